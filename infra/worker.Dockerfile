# A Prefect process worker with Lepton (flows/, tasks/, lepton/) installed.
FROM python:3.11-slim
WORKDIR /opt/lepton
COPY pyproject.toml constraints.txt README.md ./
COPY lepton lepton
COPY flows flows
COPY tasks tasks
# torch 2.13.0 CPU build (pinned in pyproject.toml); the CPU index keeps CUDA wheels out
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu \
      -c constraints.txt '.[s3,postgres,ml,torch,prefect]'
WORKDIR /workspace
