"""The mapping language: transforms, nesting, JSON paths, and start-up errors with lines."""

import datetime as dt
import pathlib

import pytest
from lxml import etree
from pydantic import BaseModel

from hub.core.registry import resolve_mapping, resource_path
from hub.mapping import MappingError, MappingValueError, load_mapping
from hub.mapping.transforms import _date_transform


class Place(BaseModel):
    code: str | None = None
    name: str | None = None


class Person(BaseModel):
    pid: str
    born: dt.date
    sex: str
    active: bool | None = None
    place: Place | None = None
    tags: list[str] = []


XML_MAPPING = """\
format: xml
namespaces: {p: "urn:p"}
codes:
  sex: {"1": male, "2": female}
objects:
  place:
    code: p:Ma
    name: {path: p:Ma, transform: province_name}
operations:
  get:
    root: p:Rec
    fields:
      pid: p:Id
      born: {path: p:Born, transform: "date:yyyyMMdd"}
      sex: {path: p:Sex, transform: "code:sex"}
      active: {path: p:Active, transform: bool}
      place: {path: p:Place, object: place}
      tags: {path: p:Tag, many: true}
"""

XML = b"""<Resp xmlns="urn:p"><Rec><Id> 001085012345 </Id><Born>19850304</Born><Sex>2</Sex>
<Active>true</Active><Place><Ma>079</Ma></Place><Tag>a</Tag><Tag>b</Tag></Rec></Resp>"""


def test_xml_mapping_applies_transforms_and_nesting():
    mapping = load_mapping("t.yaml", XML_MAPPING, models={"get": Person})
    result = mapping.operation("get").apply(etree.fromstring(XML))
    assert result == {
        "pid": "001085012345",
        "born": dt.date(1985, 3, 4),
        "sex": "female",
        "active": True,
        "place": {"code": "079", "name": "Hồ Chí Minh"},
        "tags": ["a", "b"],
    }


def test_missing_values_become_defaults_and_composite_text_joins():
    text = XML_MAPPING.replace("pid: p:Id", "pid: {path: p:Name}")
    mapping = load_mapping("t.yaml", text, models={"get": Person})
    xml = '<R xmlns="urn:p"><Rec><Name><A>Nguyễn</A><B/><C>An</C></Name><Born>20000101</Born><Sex>1</Sex></Rec></R>'
    result = mapping.operation("get").apply(etree.fromstring(xml.encode()))
    assert result["pid"] == "Nguyễn An"
    assert result["place"] is None and result["active"] is None and result["tags"] == []


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (
            b'<R xmlns="urn:p"><Rec><Id>1</Id><Born>1985-03-04</Born><Sex>1</Sex></Rec></R>',
            "born: not a date",
        ),
        (
            b'<R xmlns="urn:p"><Rec><Id>1</Id><Born>19850304</Born><Sex>9</Sex></Rec></R>',
            "sex: not a known code",
        ),
        (b'<R xmlns="urn:p"><Other/></R>', "record element is missing"),
    ],
)
def test_bad_upstream_values_raise_mapping_value_errors_without_the_value(xml, message):
    mapping = load_mapping("t.yaml", XML_MAPPING, models={"get": Person})
    with pytest.raises(MappingValueError) as info:
        mapping.operation("get").apply(etree.fromstring(xml))
    assert message in str(info.value)
    assert "1985-03-04" not in str(info.value)


def test_json_mapping():
    text = """\
format: json
operations:
  get:
    root: items.0
    fields:
      pid: id
      born: {path: dates.birth, transform: "date:yyyy-MM-dd"}
      sex: sex
      tags: {path: tags, many: true}
"""
    mapping = load_mapping("j.yaml", text, models={"get": Person})
    payload = {"items": [{"id": "x", "dates": {"birth": "2001-02-03"}, "sex": "m", "tags": ["t"]}]}
    assert mapping.operation("get").apply(payload) == {
        "pid": "x",
        "born": dt.date(2001, 2, 3),
        "sex": "m",
        "tags": ["t"],
    }


class Stamped(BaseModel):
    at: dt.datetime
    local: dt.datetime | None = None


def test_local_times_with_an_offset_become_aware():
    text = """\
format: json
operations:
  get:
    fields:
      at: {path: t, transform: "date:yyyyMMddHHmmss@+07:00"}
      local: {path: t, transform: "date:yyyyMMddHHmmss"}
"""
    mapped = (
        load_mapping("j.yaml", text, models={"get": Stamped})
        .operation("get")
        .apply({"t": "20261201091530"})
    )
    assert mapped["at"] == dt.datetime(2026, 12, 1, 2, 15, 30, tzinfo=dt.UTC)
    assert mapped["at"].utcoffset() == dt.timedelta(hours=7)
    assert mapped["local"].tzinfo is None


@pytest.mark.parametrize(
    "transform", ["date:yyyyMMdd@+07:00", "date:yyyyMMddHHmmss@7", "date:yyyyMMddHHmmss@+7:00"]
)
def test_a_bad_offset_stops_start_up(transform):
    text = f"""\
format: json
operations:
  get:
    fields:
      at: {{path: t, transform: "{transform}"}}
"""
    with pytest.raises(MappingError, match="@offset"):
        load_mapping("j.yaml", text, models={"get": Stamped})


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (('transform: "code:sex"', 'transform: "code:nope"'), 15, "unknown code list 'nope'"),
        (("transform: bool", "transform: shout"), 16, "unknown transform 'shout'"),
        (("      pid: p:Id", "      pid: q:Id"), 13, "undefined namespace prefix 'q'"),
        (("      tags:", "      colour:"), 18, "Person has no field 'colour'"),
        (("      pid: p:Id\n", ""), 12, "required field 'pid' of Person is not mapped"),
        (("object: place", "object: planet"), 17, "unknown object 'planet'"),
        (("    name: {path: p:Ma", "    name: {pth: p:Ma"), 8, "objects.place.name"),
        (("format: xml", "format: csv"), 1, "format"),
        (("  get:", "  get: [oops"), None, "not valid YAML"),
        (("root: p:Rec", "root: 'p:Rec['"), 11, "invalid XPath"),
    ],
)
def test_bad_mappings_stop_with_file_and_line(change, line, message):
    text = XML_MAPPING.replace(*change)
    assert text != XML_MAPPING
    with pytest.raises(MappingError) as info:
        load_mapping("mappings/t.yaml", text, models={"get": Person})
    assert message in str(info.value)
    if line is not None:
        assert str(info.value).startswith(f"mappings/t.yaml:{line}:"), str(info.value)


def test_mapping_must_cover_every_operation():
    with pytest.raises(MappingError, match="operation 'other' has no mapping"):
        load_mapping("t.yaml", XML_MAPPING, models={"get": Person, "other": Person})


def test_the_shipped_population_mapping_compiles_against_its_models():
    from adapters.population import PopulationAdapter

    mapping = resolve_mapping(PopulationAdapter)
    assert set(mapping.operations) == {"lookup", "verify"}


def test_a_bare_file_name_is_beside_the_adapter():
    """A reference without a package (`mapping = "mapping.yaml"`) names the file beside the
    adapter declaring it: in its package, or beside its module when that is no package."""
    from adapters.population import PopulationAdapter

    assert resource_path("mapping.yaml", PopulationAdapter) == resource_path(
        "adapters.population:mapping.yaml"
    )

    class Beside(PopulationAdapter):  # declared in this test module
        mapping = "test_mapping.py"

    assert resource_path(Beside.mapping, Beside).read_text(encoding="utf-8") == (
        pathlib.Path(__file__).read_text(encoding="utf-8")
    )
    with pytest.raises(FileNotFoundError):
        resource_path("mapping.yaml")


def test_the_first_of_repeated_elements_wins_and_comments_are_ignored():
    mapping = load_mapping("t.yaml", XML_MAPPING, models={"get": Person})
    xml = (
        b'<R xmlns="urn:p"><Rec><!-- note --><Id>first</Id><Id>second</Id><Born>19850304</Born>'
        b"<Sex>1</Sex><Place><Ma>001</Ma><Ma>079</Ma></Place></Rec></R>"
    )
    result = mapping.operation("get").apply(etree.fromstring(xml))
    assert result["pid"] == "first"
    assert result["place"] == {"code": "001", "name": "Hà Nội"}


@pytest.mark.parametrize(
    ("transform", "text", "expected"),
    [
        ("date:yyyyMMdd", "19920423", dt.date(1992, 4, 23)),
        ("date:yyyy-MM-dd", "2001-02-03", dt.date(2001, 2, 3)),
        ("date:yyyyMMddHHmmss", "20261201091530", dt.datetime(2026, 12, 1, 9, 15, 30)),
        ("date:dd/MM/yyyy", "03/02/2001", dt.date(2001, 2, 3)),  # strptime's way
    ],
)
def test_date_transforms_read_their_pattern(transform: str, text: str, expected: object) -> None:
    assert _date_transform(transform.removeprefix("date:"))(text) == expected


@pytest.mark.parametrize(
    "text",
    ["1992042", "199204230", "19921323", "19920230", " 19920423", "１９９２0423", "1992-04-23"],
)
def test_fixed_width_dates_refuse_what_does_not_fit_the_pattern(text: str) -> None:
    """yyyyMMdd is read at fixed width, ASCII digits only, and must be a real date."""
    with pytest.raises(MappingValueError, match="not a date in the form yyyyMMdd"):
        _date_transform("yyyyMMdd")(text)


class Paths(BaseModel):
    inner: str | None = None
    later: str | None = None
    outer: str | None = None
    twice_up: str | None = None


PATHS_MAPPING = """\
format: xml
namespaces: {p: "urn:p"}
operations:
  get:
    root: p:Rec/p:In
    fields:
      inner: p:A/p:B
      later: p:C/p:D
      outer: ../p:Book
      twice_up: ../../p:Top
"""


def test_path_steps_read_as_xpath_would():
    """Multi-step paths take the first match in document order (a later A may hold the B the
    first lacks), and `../` climbs to the parent, as the XPath they stand for."""
    mapping = load_mapping("t.yaml", PATHS_MAPPING, models={"get": Paths})
    xml = b"""<R xmlns="urn:p"><Top>t</Top><Rec><Book>b1</Book><In><A><B>first</B></A><A><B>x</B></A>
    <C/><C><D>from the second C</D></C></In></Rec></R>"""
    result = mapping.operation("get").apply(etree.fromstring(xml))
    assert result == {
        "inner": "first",
        "later": "from the second C",
        "outer": "b1",
        "twice_up": "t",
    }
    for name, path in [("inner", "p:A/p:B"), ("later", "p:C/p:D"), ("outer", "../p:Book")]:
        node = etree.fromstring(xml).find("{urn:p}Rec/{urn:p}In")
        expected = node.xpath(path + "/text()", namespaces={"p": "urn:p"})[0]
        assert result[name] == expected.strip()
