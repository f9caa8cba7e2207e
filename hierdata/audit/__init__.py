"""The audit report: static HTML, PNG plots and stats.json that answer an auditor's questions.

`python -m hierdata.audit OUTPUT [--compare OTHER]` writes OUTPUT/report/; see report.build_report.
"""
