"""The domain, free of any engine: readers, validation, geometry, mining, statistics, synth.

Nothing here imports Beam or torch; pipelines/ and training/ are thin adapters around it.
"""
