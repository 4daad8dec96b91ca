"""The mapping tools under the name outside adapter packages import; the code is in
`hub.mapping.tools`.

The tests `hub adapter new` generates check a package's mapping against its upstream's schema
through this name, and adapters made with it keep doing so:

    from hub.mapping_tools import check_upstream_paths

    def test_the_mapping_names_only_what_upstream_has():
        assert check_upstream_paths(MAPPING_FILE, UPSTREAM_SCHEMA) == []
"""

from hub.mapping.tools import (
    SampleError,
    check_upstream_paths,
    load_sample,
    try_mapping,
    upstream_names,
)

__all__ = [
    "SampleError",
    "check_upstream_paths",
    "load_sample",
    "try_mapping",
    "upstream_names",
]
