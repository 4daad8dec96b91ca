"""`hub mappings check FILE` and `hub mappings try FILE` on the files being written: before
the adapter is installed, with dates in the result, and warning when an installed copy of
the adapter carries a different mapping."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.cli import main
from hub.scaffold import generate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A generated adapter, not installed (its package is imported from source by the
    tools); forgotten again after the test."""
    target = tmp_path / "kit-trial"
    generate("kit-trial", target)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield target / "kit_trial"
    for name in [m for m in sys.modules if m == "kit_trial" or m.startswith("kit_trial.")]:
        del sys.modules[name]


def answer_file(folder: Path) -> Path:
    record = {"MaSo": "1000001", "Ten": "Sở Tài chính", "TrangThai": "1", "NgayCap": "20150312"}
    path = folder / "answer.json"
    path.write_text(json.dumps({"status": "OK", "data": record}, ensure_ascii=False))
    return path


def test_try_works_before_install_and_with_no_service_line(project, tmp_path):
    mapping = project / "mapping.yaml"
    sample = answer_file(tmp_path)
    tried = CliRunner().invoke(main, ["mappings", "try", str(mapping), str(sample)])
    assert tried.exit_code == 0, tried.output
    result = json.loads(tried.output)
    assert result == {
        "id": "1000001",
        "name": "Sở Tài chính",
        "status": "active",
        "issued_on": "2015-03-12",
    }
    # No `service:` line and no package beside it: no model to validate with, and a `date:`
    # transform's value is still printed as JSON (it was a TypeError).
    alone = tmp_path / "alone.yaml"
    alone.write_text(mapping.read_text().replace("service: kit-trial\n", ""))
    tried = CliRunner().invoke(main, ["mappings", "try", str(alone), str(sample)])
    assert tried.exit_code == 0, tried.output
    assert json.loads(tried.output)["issued_on"] == "2015-03-12"


def test_check_reads_the_file_being_written(project):
    mapping = project / "mapping.yaml"
    checked = CliRunner().invoke(main, ["mappings", "check", str(mapping)])
    assert checked.exit_code == 0, checked.output
    assert "ok (canonical side and every path in upstream.schema.json)" in checked.output
    # A typo in an upstream path: against the schema beside the file.
    mapping.write_text(mapping.read_text().replace("name: Ten", "name: Tenn"))
    checked = CliRunner().invoke(main, ["mappings", "check", str(mapping)])
    assert checked.exit_code == 1
    assert "Tenn" in checked.output and "mapping.yaml:" in checked.output
    # A canonical field the output model does not have: the adapter imported from source.
    mapping.write_text(mapping.read_text().replace("name: Tenn", "name: Ten\n      colour: Ten"))
    checked = CliRunner().invoke(main, ["mappings", "check", str(mapping)])
    assert checked.exit_code == 1 and "colour" in checked.output, checked.output


def test_check_and_try_warn_when_the_installed_copy_differs(tmp_path):
    installed = ROOT / "adapters" / "population" / "mapping.yaml"
    if not installed.is_file():  # issue 19 moves it beside the adapter
        installed = ROOT / "adapters" / "population" / "mapping.yaml"
    edited = tmp_path / "population.yaml"
    edited.write_text(installed.read_text() + "\n# an edit not installed yet\n")
    checked = CliRunner().invoke(main, ["mappings", "check", str(edited)])
    assert "warning: the installed population adapter carries a different mapping" in (
        checked.output
    )
    same = CliRunner().invoke(main, ["mappings", "check", str(installed)])
    assert same.exit_code == 0 and "warning" not in same.output, same.output


def test_check_of_a_missing_file(tmp_path):
    checked = CliRunner().invoke(main, ["mappings", "check", str(tmp_path / "nope.yaml")])
    assert checked.exit_code == 1 and "no such file" in checked.output


def test_an_operation_reuses_an_object_as_its_whole_field_set(tmp_path):
    from pydantic import BaseModel

    from hub.mapping import MappingError, load_mapping

    class Parcel(BaseModel):
        parcel_id: str
        area_m2: float

    class Parcels(BaseModel):
        items: list[Parcel]

    text = """format: json
objects:
  parcel:
    parcel_id: SoThua
    area_m2: DienTich
operations:
  lookup-parcel: {root: data, object: parcel}
  parcels-of-owner:
    root: data
    fields:
      items: {path: DanhSach, object: parcel, many: true}
"""
    models = {"lookup-parcel": Parcel, "parcels-of-owner": Parcels}
    mapping = load_mapping("land.yaml", text, models=models)
    one = {"data": {"SoThua": "T-1", "DienTich": 120.5}}
    assert mapping.operation("lookup-parcel").apply(one) == {"parcel_id": "T-1", "area_m2": 120.5}
    many = {"data": {"DanhSach": [one["data"]]}}
    assert mapping.operation("parcels-of-owner").apply(many)["items"][0]["parcel_id"] == "T-1"
    # a field the model does not have, in the object: reported at its line in `objects`
    bad = text.replace("    area_m2: DienTich\n", "    area_m2: DienTich\n    colour: Mau\n")
    with pytest.raises(MappingError, match=r"^land\.yaml:6: .*colour"):
        load_mapping("land.yaml", bad, models=models)
    with pytest.raises(MappingError, match="no object 'plot'"):
        load_mapping("land.yaml", text.replace("object: parcel}", "object: plot}"), models=models)
    both = text.replace("object: parcel}", "object: parcel, fields: {parcel_id: SoThua}}")
    with pytest.raises(MappingError, match="`fields` or `object`"):
        load_mapping("land.yaml", both, models=models)
