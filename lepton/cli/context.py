"""How CLI commands find their repository."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from lepton.errors import ConfigError

if TYPE_CHECKING:
    from lepton.repo import Repo


def repo_from_cwd() -> Repo:
    """The repository of the current folder: the nearest lepton.toml above it,
    or one fully configured by LEPTON_STORE__URL / LEPTON_REGISTRY__URL."""
    # Imported here: the settings, registry and store are not start-up costs.
    from lepton.config import CONFIG_FILE, find_config
    from lepton.repo import open_repo

    here = Path.cwd()
    if find_config(here) is None and not os.environ.get("LEPTON_STORE__URL"):
        raise ConfigError(
            f"no {CONFIG_FILE} in {here} or above: run `lepton init` first "
            "(or set LEPTON_STORE__URL and LEPTON_REGISTRY__URL)"
        )
    return open_repo(here)
