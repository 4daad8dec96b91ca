"""The import paths outside adapter packages use keep working after hub.mapping's split."""

import hub.mapping
import hub.mapping.tools
import hub.mapping_tools

# What the hub, its tests, examples and the scaffold's templates import from the two names.
USED = {
    "hub.mapping": {
        "FieldSpec",
        "FieldValue",
        "Mapping",
        "MappingError",
        "MappingFile",
        "MappingValueError",
        "line_of",
        "load_mapping",
        "parse_mapping",
    },
    "hub.mapping_tools": {
        "SampleError",
        "check_upstream_paths",
        "load_sample",
        "try_mapping",
        "upstream_names",
    },
}


def test_the_package_exports_what_its_callers_import():
    assert set(hub.mapping.__all__) >= USED["hub.mapping"]
    for name in hub.mapping.__all__:
        assert hasattr(hub.mapping, name), name


def test_hub_mapping_tools_re_exports_the_tools_module():
    assert set(hub.mapping_tools.__all__) == USED["hub.mapping_tools"]
    for name in hub.mapping_tools.__all__:
        assert getattr(hub.mapping_tools, name) is getattr(hub.mapping.tools, name), name
