# GPU training image: CUDA PyTorch 2.13.0 plus this project, for torchrun jobs that stream shards.
#
#   docker build -f docker/train.Dockerfile --build-arg TORCH_INDEX_URL=<PyTorch CUDA wheel index> \
#       -t hier-openimages-train:0.1.0 .
#   docker run --gpus all hier-openimages-train:0.1.0 torchrun --nproc_per_node=8 -m training.train ...
FROM python:3.11-slim
# PyTorch's wheel index for the CUDA build you run (for example its cu128 index).
ARG TORCH_INDEX_URL

WORKDIR /opt/hier-openimages
COPY pyproject.toml constraints.txt README.md ./
COPY schemas ./schemas
COPY hierdata ./hierdata
COPY pipelines ./pipelines
COPY training ./training

# The constraints pin the CPU wheel's version; the CUDA wheel of the same version comes from
# PyTorch's index, so install torch first and let the constraints accept it (same version).
RUN test -n "$TORCH_INDEX_URL" || (echo "pass --build-arg TORCH_INDEX_URL" && exit 1) \
    && pip install --no-cache-dir torch==2.13.0 --index-url "$TORCH_INDEX_URL" \
    && pip install --no-cache-dir -c constraints.txt ".[train]"
