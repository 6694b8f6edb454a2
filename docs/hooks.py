"""MkDocs hooks: add the generated reference pages, fill the mapping examples, and leave
out of the navigation the pages other parts of the project add when they are not there yet."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import gen_mapping
import gen_reference

# Pages written alongside other work (benchmarks, security, proxy deployment, ingestion):
# listed in the nav, shown once they exist. Any other missing page still fails --strict.
OPTIONAL_PAGES = {"benchmarks.md", "security.md", "deployment-proxy.md", "ingestion.md"}


def _prune(nav: list[Any], docs_dir: Path) -> list[Any]:
    kept: list[Any] = []
    for item in nav:
        if isinstance(item, dict):
            ((title, value),) = item.items()
            if isinstance(value, list):
                value = _prune(value, docs_dir)
                if value:
                    kept.append({title: value})
            elif not (value in OPTIONAL_PAGES and not (docs_dir / value).exists()):
                kept.append({title: value})
        elif not (item in OPTIONAL_PAGES and not (docs_dir / item).exists()):
            kept.append(item)
    return kept


def on_config(config: Any, **_: Any) -> Any:
    config["nav"] = _prune(config["nav"], Path(config["docs_dir"]))
    return config


def on_files(files: Any, config: Any, **_: Any) -> Any:
    from mkdocs.structure.files import File

    for name, build in gen_reference.PAGES.items():
        files.append(File.generated(config, name, content=build()))
    return files


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if page.file.src_uri == "mapping.md":
        return gen_mapping.fill_mapping(markdown)
    return markdown
