# Dataflow SDK worker image: Beam's own Python 3.11 SDK image with this project installed.
# The Beam version here MUST equal apache-beam in constraints.txt (2.77.0), and Beam's
# ENTRYPOINT (/opt/apache/beam/boot) is inherited unchanged: do not set ENTRYPOINT or CMD.
#
#   docker build -f docker/dataflow.Dockerfile -t REGION-docker.pkg.dev/PROJECT/REPO/hier-openimages:0.1.0 .
#   docker push REGION-docker.pkg.dev/PROJECT/REPO/hier-openimages:0.1.0
#   python -m pipelines.build_hier_openimages --runner=DataflowRunner \
#       --sdk_container_image=REGION-docker.pkg.dev/PROJECT/REPO/hier-openimages:0.1.0 ...
FROM apache/beam_python3.11_sdk:2.77.0

WORKDIR /opt/hier-openimages
COPY pyproject.toml constraints.txt README.md ./
COPY schemas ./schemas
COPY hierdata ./hierdata
COPY pipelines ./pipelines
COPY training ./training

# Workers need only the pipeline dependencies (no torch): the base extras, pinned.
RUN pip install --no-cache-dir -c constraints.txt . \
    && python -c "import apache_beam, hierdata.buckets, pipelines.graph; \
assert apache_beam.__version__ == '2.77.0', apache_beam.__version__"
