"""`hub mappings check` and `hub mappings try`: a mapping against its upstream's own
description, and on a saved upstream answer."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from hub.cli import main
from hub.mapping.tools import SampleError, check_upstream_paths, try_mapping
from mocks import create_mock_app
from mocks.data import load_citizens
from mocks.population.client_auth import PopulationAuth
from tests.mocks.conftest import lookup_body

ROOT = Path(__file__).resolve().parents[2]
POPULATION_MAPPING = ROOT / "adapters" / "population" / "mapping.yaml"
WSDL = ROOT / "adapters" / "population" / "population.wsdl"


def test_the_population_mapping_names_only_what_the_wsdl_declares():
    assert check_upstream_paths(POPULATION_MAPPING, WSDL) == []


def test_a_misspelt_element_is_reported_with_its_line(tmp_path):
    text = POPULATION_MAPPING.read_text(encoding="utf-8")
    broken = text.replace("ward_code: r:MaPhuongXa", "ward_code: r:MaPhuongXaa", 1)
    assert broken != text
    target = tmp_path / "population.yaml"
    target.write_text(broken, encoding="utf-8")
    line = broken.splitlines().index("    ward_code: r:MaPhuongXaa") + 1
    [error] = check_upstream_paths(target, WSDL)
    assert str(error) == (
        f"{target}:{line}: objects.address.ward_code: no element 'MaPhuongXaa' in population.wsdl"
    )


JSON_MAPPING = """\
format: json
objects:
  line:
    code: MaNganh
    name: TenNganh
operations:
  lookup:
    root: GetEntCert.0
    fields:
      code: MaSoDoanhNghiep
      lines: {path: NganhNghe, many: true, object: line}
      status: TinhTrang.0.Ma
"""

SCHEMA = {
    "type": "object",
    "properties": {"GetEntCert": {"type": "array", "items": {"$ref": "#/$defs/cert"}}},
    "$defs": {
        "cert": {
            "type": "object",
            "properties": {
                "MaSoDoanhNghiep": {"type": "string"},
                "NganhNghe": {"type": "array", "items": {"$ref": "#/$defs/line"}},
                "TinhTrang": {
                    "type": "array",
                    "items": {"anyOf": [{"type": "null"}, {"properties": {"Ma": {}}}]},
                },
            },
        },
        "line": {"type": "object", "properties": {"MaNganh": {}, "TenNganh": {}}},
    },
}


def write(tmp_path: Path, mapping: str, schema: object) -> tuple[Path, Path]:
    (tmp_path / "m.yaml").write_text(mapping, encoding="utf-8")
    (tmp_path / "s.json").write_text(json.dumps(schema), encoding="utf-8")
    return tmp_path / "m.yaml", tmp_path / "s.json"


def test_json_paths_walk_properties_items_refs_unions_and_objects(tmp_path):
    assert check_upstream_paths(*write(tmp_path, JSON_MAPPING, SCHEMA)) == []


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (
            ("code: MaSoDoanhNghiep", "code: MaSoDN"),
            10,
            "operations.lookup.fields.code: no field 'MaSoDN'",
        ),
        (("name: TenNganh", "name: TenNganhh"), 5, "objects.line.name: no field 'TenNganhh'"),
        (
            ("TinhTrang.0.Ma", "TinhTrang.0.Mb"),
            12,
            "operations.lookup.fields.status: no field 'Mb'",
        ),
        (
            ("root: GetEntCert.0", "root: GetCert.0"),
            8,
            "operations.lookup.root: no field 'GetCert'",
        ),
    ],
)
def test_json_paths_upstream_does_not_have(tmp_path, change, line, message):
    mapping, schema = write(tmp_path, JSON_MAPPING.replace(*change), SCHEMA)
    [error] = check_upstream_paths(mapping, schema)
    assert str(error) == f"{mapping}:{line}: {message} in s.json"


@pytest.fixture(scope="module")
def soap_sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A real answer of the population mock, saved as an integrator would save one."""
    import asyncio

    citizen = load_citizens()[0]

    async def fetch() -> bytes:
        transport = httpx.ASGITransport(app=create_mock_app("population"))
        async with httpx.AsyncClient(transport=transport, base_url="http://mock") as client:
            auth = PopulationAuth("hub", "population-secret")
            answer = await client.post(
                "/dancu/ws", content=lookup_body(citizen.personal_id), auth=auth
            )
            return answer.content

    path = tmp_path_factory.mktemp("samples") / "lookup.xml"
    path.write_bytes(asyncio.run(fetch()))
    return path, citizen.personal_id


def test_try_maps_a_saved_soap_answer(soap_sample):
    from adapters.population import PopulationAdapter

    sample, personal_id = soap_sample
    models = {s.name: s.output_model for s in PopulationAdapter.operations.values()}
    operation, result = try_mapping(POPULATION_MAPPING, sample, operation="lookup", models=models)
    assert operation == "lookup" and result["personal_id"] == personal_id
    assert result["date_of_birth"] == load_citizens()[0].date_of_birth.isoformat()


def test_try_refuses_what_it_cannot_map(soap_sample, tmp_path):
    sample, _ = soap_sample
    with pytest.raises(LookupError, match="several operations"):
        try_mapping(POPULATION_MAPPING, sample)
    with pytest.raises(LookupError, match="no operation 'search'"):
        try_mapping(POPULATION_MAPPING, sample, operation="search")
    json_sample = tmp_path / "s.json"
    json_sample.write_text('{"a": 1}', encoding="utf-8")
    with pytest.raises(SampleError, match="reads XML; the sample is JSON"):
        try_mapping(POPULATION_MAPPING, json_sample, operation="lookup")
    entity = tmp_path / "x.xml"
    entity.write_text('<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><a>&e;</a>')
    with pytest.raises(SampleError):  # no entity is ever resolved
        try_mapping(POPULATION_MAPPING, entity, operation="lookup")


def test_cli_check_and_try(soap_sample):
    runner = CliRunner()
    checked = runner.invoke(main, ["mappings", "check"])
    assert checked.exit_code == 0, checked.output
    assert "population: ok (canonical side and every path in population.wsdl)" in checked.output
    for name in ("judicial-records", "business-registration", "payment"):
        assert (
            f"{name}: ok (canonical side and every path in upstream.schema.json)" in checked.output
        )
    assert "civil-status: ok (canonical side; no upstream schema declared)" in checked.output
    unknown = runner.invoke(main, ["mappings", "check", "land-registry"])
    assert unknown.exit_code == 1 and "not installed" in unknown.output

    sample, personal_id = soap_sample
    tried = runner.invoke(
        main, ["mappings", "try", str(POPULATION_MAPPING), str(sample), "-o", "lookup"]
    )
    assert tried.exit_code == 0, tried.output
    assert json.loads(tried.output)["personal_id"] == personal_id
    several = runner.invoke(main, ["mappings", "try", str(POPULATION_MAPPING), str(sample)])
    assert several.exit_code == 1 and "several operations" in several.output
