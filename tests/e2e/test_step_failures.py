"""User code returning what JSON cannot hold: that event is dead-lettered, the others land."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import rows_in

pytestmark = pytest.mark.e2e


def test_unencodable_step_output_is_dead_lettered(meshline, tmp_path: Path):
    spec = tmp_path / "it.yaml"
    out = tmp_path / "out"
    spec.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: rejecting}}
spec:
  sources:
    - name: gen
      type: generate
      config: {{count: 10, event: {{type: demo, data: {{n: "{{n}}"}}}}}}
  transformations:
    - name: huge
      type: python
      config:
        code: |
          def handle(event):
              if event.data["n"] == "3":
                  event.data["n"] = 2 ** 80   # JSON encoders reject integers this large
              return event
  targets:
    - {{name: out, type: file, config: {{path: "{out}/ok"}}}}
    - {{name: dlq, type: file, config: {{path: "{out}/dlq"}}}}
  triggers:
    - {{name: all, steps: [huge], target: out}}
  deadLetter: dlq
""")
    r = meshline("run", str(spec))
    assert r.returncode == 0, r.stderr
    ok = rows_in(out / "ok")
    dlq = rows_in(out / "dlq")
    assert sorted(e["id"] for e in ok) == [str(i) for i in range(10) if i != 3]
    assert len(dlq) == 1 and dlq[0]["id"] == "3"
    assert dlq[0]["meshlineerrorstage"] == "transform" and dlq[0]["meshlinestep"] == "huge"
    assert "not JSON" in dlq[0]["meshlineerror"]
    assert dlq[0]["data"] == {"n": "3"}  # the event as it entered the trigger
