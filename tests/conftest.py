import numpy as np
import pytest
import torch

from ganedit.world.config import load_world_config


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def celeba():
    return load_world_config("celeba")


@pytest.fixture(scope="session")
def independent():
    return load_world_config("independent")
