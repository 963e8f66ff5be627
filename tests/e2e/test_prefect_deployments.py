"""prefect.yaml registers every flow's deployment with its schedule on a real Prefect server."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.servers import BIN, prefect_server

pytestmark = [pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]


def test_prefect_yaml_deploys_with_schedules(tmp_path):
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    names = {d["name"] for d in spec["deployments"]}
    assert {"ingest-every-15min", "features-hourly", "train-daily", "detect-every-15min", "pipeline-daily"} <= names
    with prefect_server(tmp_path / "prefect") as env:
        env = {**env, "AIOPS_PROJECT_DIR": str(ROOT)}
        subprocess.run([str(BIN / "prefect"), "work-pool", "create", "aiops", "--type", "process"], env=env,
                       check=True, capture_output=True, cwd=ROOT, timeout=120)
        proc = subprocess.run([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], env=env, capture_output=True,
                              text=True, cwd=ROOT, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        script = (
            "import asyncio, json\n"
            "from prefect.client.orchestration import get_client\n"
            "async def main():\n"
            "    async with get_client() as c:\n"
            "        out = {}\n"
            "        for d in await c.read_deployments():\n"
            "            flow = await c.read_flow(d.flow_id)\n"
            "            out[f'{flow.name}/{d.name}'] = {'entrypoint': d.entrypoint, 'pool': d.work_pool_name,\n"
            "                'crons': [s.schedule.cron for s in d.schedules], 'active': [s.active for s in d.schedules],\n"
            "                'params': sorted((d.parameter_openapi_schema or {}).get('properties', {}))}\n"
            "        print(json.dumps(out))\n"
            "asyncio.run(main())\n"
        )
        out = subprocess.run([str(BIN / "python"), "-c", script], env=env, capture_output=True, text=True,
                             check=True, timeout=120)
    deployed = json.loads(out.stdout.strip().splitlines()[-1])
    assert deployed["ingest/ingest-every-15min"]["crons"] == ["*/15 * * * *"]
    assert deployed["ingest/ingest-every-15min"]["entrypoint"] == "flows/ingest.py:ingest"
    assert deployed["features/features-hourly"]["crons"] == ["20 * * * *"]
    assert deployed["pipeline/pipeline-daily"]["active"] == [False]
    assert deployed["train/train-daily"]["entrypoint"] == "flows/train.py:train"
    assert deployed["train/train-daily"]["crons"] == ["40 3 * * *"]
    assert deployed["detect/detect-every-15min"]["entrypoint"] == "flows/detect.py:detect"
    assert deployed["detect/detect-every-15min"]["crons"] == ["5-59/15 * * * *"]
    assert deployed["actuate/actuate-every-5min"]["entrypoint"] == "flows/actuate.py:actuate"
    assert deployed["actuate/actuate-every-5min"]["active"] == [False]
    assert deployed["prescale/prescale-every-15min"]["entrypoint"] == "flows/prescale.py:prescale"
    assert deployed["prescale/prescale-every-15min"]["crons"] == ["*/15 * * * *"]
    assert deployed["tune/tune-weekly"]["entrypoint"] == "flows/tune.py:tune"
    assert deployed["tune/tune-weekly"]["crons"] == ["0 3 * * 0"]
    assert deployed["prescale/prescale-every-15min"]["active"] == deployed["tune/tune-weekly"]["active"] == [False]
    assert deployed["cost/cost-daily"]["entrypoint"] == "flows/cost.py:cost"
    assert deployed["cost/cost-daily"]["crons"] == ["30 4 * * *"] and deployed["cost/cost-daily"]["active"] == [False]
    assert all(d["pool"] == "aiops" for d in deployed.values())
    # flow parameters are pydantic models, so the deployment form is typed
    assert deployed["ingest/ingest-every-15min"]["params"] == ["params"]
