"""The text files ``meshline deploy --to flink-kubernetes`` writes: the Dockerfile and the README.

Kept apart from :mod:`meshline.deploy` (which builds the manifests) so each stays readable;
``{{name}}`` fields are filled by :func:`render`.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["DOCKERFILE", "README", "render"]

DOCKERFILE = """\
# syntax=docker/dockerfile:1
# The image of the Flink Kubernetes deployment of the integration {{name}} (written by
# `meshline deploy --to flink-kubernetes`; written again by the next deploy, so edit the flags instead).
# One image for the JobManager, the TaskManagers and their `beam-worker-pool` sidecar.

FROM flink:{{flink_version}}-java17 AS base
USER root
# Python 3.11 from python-build-standalone (uv): it runs on any glibc, whatever the Flink image's
# distribution ships.
COPY --from=ghcr.io/astral-sh/uv:0.8 /uv /usr/local/bin/uv
ENV UV_PYTHON_INSTALL_DIR=/opt/python VIRTUAL_ENV=/opt/meshline/venv
RUN uv venv --python 3.11 /opt/meshline/venv
ENV PATH=/opt/meshline/venv/bin:$PATH
# Meshline's runtime pins (requirements.lock), with the Beam SDK: {{beam_pin}}
COPY requirements.txt /opt/meshline/requirements.txt
RUN uv pip install --no-cache -r /opt/meshline/requirements.txt
# Meshline itself, the copy of the package this deploy was written with (self-contained setup.py).
COPY src /opt/meshline/src
RUN uv pip install --no-cache --no-deps /opt/meshline/src
COPY integration.yaml /opt/meshline/integration.yaml
{{copy_files}}
# ---- the job jar: the pipeline, translated for Flink by Beam's job server, as a jar for `flink run`
FROM base AS job
# Maven fetches Beam's Flink job server once; javac builds Meshline's loopback agent for it.
RUN apt-get update && apt-get install -y --no-install-recommends maven openjdk-17-jdk-headless \\
    && rm -rf /var/lib/apt/lists/*
# EXTERNAL environment at 127.0.0.1:50000 (the sidecar) is what Meshline sets with
# --output_executable_path; --parallelism=-1 leaves the parallelism to the FlinkDeployment.
RUN {{job_command}}

FROM base
COPY --from=job /opt/meshline/job.jar /opt/meshline/job.jar
RUN chown -R flink:flink /opt/meshline
USER flink
"""

README = """\
# {{name}} on Flink, with the Flink Kubernetes Operator

Written by `meshline deploy --to flink-kubernetes` from `{{source_file}}`:

| file | what |
|---|---|
| `Dockerfile` | the image: Flink {{flink_version}} (Java 17), Python 3.11, `{{beam_pin}}`, Meshline, \
the integration and its job jar |
| `flinkdeployment.yaml` | the `FlinkDeployment` (application mode, `upgradeMode: savepoint`, \
checkpoints every {{checkpoint_interval}}) |
{{secret_row}}| `integration.yaml`, `src/`, `requirements.txt` | what the image is built from |

Flags used: `{{flags}}`

## Topology

Beam's documented Flink-on-Kubernetes layout: the JobManager runs the job jar
(`local:///opt/meshline/job.jar`, the pipeline translated for Flink at image build time with
`-- --output_executable_path`); each TaskManager pod has a second container,
`beam-worker-pool` (`python -m meshline.runners.worker_pool --service_port=50000`, listening on
the pod's loopback only), where the integration's Python steps run: the job's environment is
`EXTERNAL` at `127.0.0.1:50000`.

## Build and push

```sh
docker build -t {{image}} .
docker push {{image}}
```

## Install

1. The operator, once per cluster (cert-manager first):
   https://nightlies.apache.org/flink/flink-kubernetes-operator-docs-stable/docs/try-flink-kubernetes-operator/quick-start/
   (`helm install flink-kubernetes-operator flink-operator-repo/flink-kubernetes-operator`),
   which also creates the `flink` service account this deployment runs as.
{{secret_step}}
3. The job:

   ```sh
   kubectl apply -f flinkdeployment.yaml
   kubectl -n {{namespace}} get flinkdeployment {{k8s_name}}
   ```

Checkpoints, savepoints and high-availability metadata go to `{{state_dir}}`: it must be durable
storage that the JobManager and every TaskManager reach (`s3://`, `gs://`, or a volume mounted
at the same path in all pods); a pod's own disk loses them with the pod.

## Upgrade

Edit the integration, then:

```sh
# warns when the savepoint no longer fits the edit
meshline deploy {{source_file}} --to flink-kubernetes -o . --previous OLD.yaml
docker build -t {{image}} . && docker push {{image}}   # a new tag is better
kubectl apply -f flinkdeployment.yaml
```

With `upgradeMode: savepoint` the operator stops the running job with a savepoint and starts the
new one from it. State is restored by operator name: the sources (`Source[NAME]`) hold it, so
renaming, removing or re-pointing a source (another topic, queue, group…) loses what was saved
for it (`--previous` says so); triggers, filters and steps hold no state and change freely.
"""


def render(text: str, values: Mapping[str, str]) -> str:
    """``text`` with every ``{{key}}`` replaced by its value."""
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text
