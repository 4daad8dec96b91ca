"""Declarative mappings: upstream payload -> canonical model, one YAML file per adapter.

A mapping file names, for each operation, where every canonical field is found in the
upstream payload (XPath for XML, dotted paths for JSON) and which named transforms turn the
upstream value into the canonical one. It is compiled and checked when the hub starts: a bad
file stops start-up with `MappingError("file:line: what is wrong")`, never a traceback in the
middle of a request. The language is documented in docs/mappings.md.

    format: xml                       # or json
    namespaces: {r: "http://…"}
    codes:                            # code lists for the `code:NAME` transform
      gender: {"1": male, "2": female}
    objects:                          # reusable nested shapes
      address:
        province_code: r:MaTinhThanh
        province_name: {path: r:MaTinhThanh, transform: province_name}
    operations:
      lookup:
        root: //r:CongDan            # where the record starts
        fields:
          personal_id: r:SoDinhDanh
          gender: {path: r:GioiTinh, transform: "code:gender"}
          date_of_birth: {path: r:NgayThangNamSinh/r:NgayThangNam, transform: "date:yyyyMMdd"}
          permanent_address: {path: r:ThuongTru, object: address}

Why not an off-the-shelf tool: JSONata/jq/XSLT engines each cover one format, none checks the
target against a pydantic model at start-up, and none reports the line of a mistake.

The package, by seam (import from here; the modules are the implementation):

    spec         the file's format: its schema, YAML with lines, parse_mapping, MappingError
    transforms   the named value transforms, MappingValueError
    paths        XPath over lxml and dotted paths over JSON, compiled to Getters
    engine       the compiled rules and their application to a payload (the hot path)
    compiler     load_mapping: a file checked against the canonical models and compiled
    tools        `hub mappings check` and `try` (not imported here; see hub.mapping_tools)
"""

from hub.mapping.compiler import load_mapping
from hub.mapping.engine import (
    Builder,
    CompiledField,
    Extractor,
    Mapping,
    OperationMapping,
    compile_field,
    object_builder,
)
from hub.mapping.paths import Getter
from hub.mapping.spec import (
    FieldSpec,
    FieldValue,
    MappingError,
    MappingFile,
    OperationSpec,
    line_of,
    parse_mapping,
)
from hub.mapping.transforms import TRANSFORMS_HELP, MappingValueError, Transform

__all__ = [
    "TRANSFORMS_HELP",
    "Builder",
    "CompiledField",
    "Extractor",
    "FieldSpec",
    "FieldValue",
    "Getter",
    "Mapping",
    "MappingError",
    "MappingFile",
    "MappingValueError",
    "OperationMapping",
    "OperationSpec",
    "Transform",
    "compile_field",
    "line_of",
    "load_mapping",
    "object_builder",
    "parse_mapping",
]
