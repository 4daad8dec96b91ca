"""A plain `pip install .` must carry the adapters' mappings, the WSDLs and the mock data set."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILTINS = ("population", "civil_status", "business_registration", "judicial_records", "payment")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    [built] = out.glob("lgsp_hub-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_carries_package_data(wheel):
    names = set(wheel.namelist())
    for required in (
        # each built-in adapter's room: its class, models and mapping side by side (the
        # payment models are the payment capability's, for any provider)
        *(
            f"adapters/{name}/{file}"
            for name in BUILTINS
            for file in ("__init__.py", "models.py", "mapping.yaml")
            if (name, file) != ("payment", "models.py")
        ),
        "hub/capabilities/payments/models.py",
        "adapters/population/population.wsdl",
        "mocks/population/population.wsdl",
        "mocks/data/citizens.json.gz",
        "hub/app.py",
        "hub/scaffold/templates/rest/__pkg__/__init__.py.tmpl",
        "adapters/payment/upstream.schema.json",
        "hub/migrations/versions/0001_initial.py",
        "hub/migrations/script.py.mako",
        "hub/scaffold/templates/soap/__pkg__/service.wsdl.tmpl",
        "hub/scaffold/templates/soap/tests/test___pkg__.py.tmpl",
        # the console: its pages, assets (no CDN) and catalogues
        "hub/console/templates/base.html",
        "hub/console/static/console.css",
        "hub/console/static/vendor/htmx.min.js",
        "hub/console/static/vendor/uPlot.iife.min.js",
        "hub/console/static/vendor/htmx.LICENSE.txt",
        "hub/console/locale/vi/LC_MESSAGES/messages.po",
    ):
        assert required in names, required
    assert not any(name.startswith(("tests/", "mappings/")) for name in names)


def test_the_wheel_registers_the_builtin_adapter_and_the_console_script(wheel):
    [entry_points] = [n for n in wheel.namelist() if n.endswith("entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "[hub.adapters]" in text and "population = adapters.population:PopulationAdapter" in text
    assert "hub = hub.cli:main" in text
