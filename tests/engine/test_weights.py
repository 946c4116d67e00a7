"""Where VGGish weights and PCA parameters are looked for, and what the offline error says.

Every test isolates the environment: ``$WARBLR_VGGISH_WEIGHTS``/``$WARBLR_VGGISH_PCA``
unset and the torch hub dir pointed at an empty temporary folder, so a real
cache on the machine can neither help nor hurt.
"""

import hashlib
import os
import re

import numpy as np
import pytest
import torch

from warblr import spec
from warblr.errors import InvalidArgumentError, WarblrError, WeightsNotFoundError
from warblr.model import random_state_dict
from warblr.postprocess import load_pca_params, random_pca_params
from warblr.weights import (hub_checkpoint_dir, is_released_weights, load_vggish, load_with_provenance,
                            published_sha256_prefix, resolve_weights)


@pytest.fixture
def isolated_hub(tmp_path, monkeypatch):
    """An empty torch hub dir (via torch.hub.set_dir, restored afterwards) and no env overrides."""
    monkeypatch.delenv(spec.WEIGHTS_ENV_VAR, raising=False)
    monkeypatch.delenv(spec.PCA_ENV_VAR, raising=False)
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "_hub_dir", torch.hub._hub_dir)  # restored on teardown
    torch.hub.set_dir(str(hub))
    return hub


@pytest.fixture(scope="module")
def saved_state():
    return random_state_dict(seed=5)


@pytest.fixture(scope="module")
def saved_file(saved_state, tmp_path_factory):
    """The random state_dict saved once (290 MB); tests hard-link it wherever they need it."""
    path = tmp_path_factory.mktemp("weights") / "saved.pth"
    torch.save(saved_state, path)
    return path


def place(saved_file, destination):
    destination.parent.mkdir(parents=True, exist_ok=True)
    os.link(saved_file, destination)
    return destination


def sha256_of(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def assert_loaded(model, state):
    """Loaded value for value; a file that is not the released one is never called pretrained."""
    loaded = model.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    assert model.weights_sha256 == sha256_of(model.weights_source)
    assert model.pretrained is False  # random weights: their SHA-256 does not start with 10086976


def test_explicit_path(isolated_hub, tmp_path, saved_state, saved_file):
    path = place(saved_file, tmp_path / "weights.pth")
    assert resolve_weights(path, download=False) == path
    model = load_vggish(path, download=False)
    assert_loaded(model, saved_state)
    assert model.weights_source == str(path)


def test_env_var(isolated_hub, tmp_path, saved_state, saved_file, monkeypatch):
    path = place(saved_file, tmp_path / "from_env.pth")
    monkeypatch.setenv(spec.WEIGHTS_ENV_VAR, str(path))
    assert resolve_weights(download=False) == path
    assert_loaded(load_vggish(download=False), saved_state)


def test_torch_hub_cache_via_set_dir(isolated_hub, saved_state, saved_file):
    cached = place(saved_file, isolated_hub / "checkpoints" / spec.VGGISH_WEIGHTS_FILENAME)
    assert hub_checkpoint_dir() == isolated_hub / "checkpoints"
    assert resolve_weights(download=False) == cached
    assert_loaded(load_vggish("auto", download=False), saved_state)


def test_torch_hub_cache_via_torch_home(tmp_path, saved_file, monkeypatch):
    monkeypatch.delenv(spec.WEIGHTS_ENV_VAR, raising=False)
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    cached = place(saved_file, tmp_path / "torch_home" / "hub" / "checkpoints" / spec.VGGISH_WEIGHTS_FILENAME)
    assert resolve_weights(download=False) == cached


def test_env_var_wins_over_hub_cache(isolated_hub, tmp_path, saved_file, monkeypatch):
    cached = isolated_hub / "checkpoints" / spec.VGGISH_WEIGHTS_FILENAME
    cached.parent.mkdir(parents=True)
    torch.save({"not": torch.zeros(1)}, cached)
    path = place(saved_file, tmp_path / "env.pth")
    monkeypatch.setenv(spec.WEIGHTS_ENV_VAR, str(path))
    assert resolve_weights(download=False) == path


def assert_offline_message(message, hub):
    assert spec.VGGISH_WEIGHTS_FILENAME in message
    assert str(hub / "checkpoints" / spec.VGGISH_WEIGHTS_FILENAME) in message
    assert spec.WEIGHTS_ENV_VAR in message
    assert "random" in message  # the offline way out


def test_offline_error_without_download(isolated_hub, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("download attempted with download=False")

    monkeypatch.setattr(torch.hub, "download_url_to_file", forbidden)
    with pytest.raises(WeightsNotFoundError) as info:
        load_vggish("auto", download=False)
    assert_offline_message(str(info.value), isolated_hub)


def test_offline_error_when_download_fails(isolated_hub, monkeypatch):
    calls = []

    def failing_download(url, dst, *args, **kwargs):
        calls.append(url)
        with open(dst, "wb") as partial:  # a half-written file must not survive
            partial.write(b"partial")
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", failing_download)
    with pytest.raises(WeightsNotFoundError) as info:
        resolve_weights("auto", download=True)
    assert calls == [spec.VGGISH_WEIGHTS_URL]
    assert_offline_message(str(info.value), isolated_hub)
    assert "network is unreachable" in str(info.value)
    assert not (isolated_hub / "checkpoints" / spec.VGGISH_WEIGHTS_FILENAME).exists()


def test_a_download_whose_hash_is_not_the_published_one_is_deleted(isolated_hub, saved_file, monkeypatch):
    def wrong_file_download(url, dst, *args, **kwargs):  # a host serving another file under the released name
        assert url == spec.VGGISH_WEIGHTS_URL
        os.link(saved_file, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", wrong_file_download)
    with pytest.raises(WeightsNotFoundError) as info:
        load_vggish("auto", download=True)
    assert sha256_of(saved_file) in str(info.value) and "10086976" in str(info.value)
    assert not (isolated_hub / "checkpoints" / spec.VGGISH_WEIGHTS_FILENAME).exists()


def test_the_published_prefix_is_torch_hubs_and_decides_pretrained():
    # torch.hub's own rule (HASH_REGEX, check_hash) read from the released names, independently of warblr's copy.
    for name in (spec.VGGISH_WEIGHTS_FILENAME, spec.PCA_PARAMS_FILENAME):
        assert published_sha256_prefix(name) == re.search(torch.hub.HASH_REGEX, name).group(1)
    assert published_sha256_prefix(spec.VGGISH_WEIGHTS_FILENAME) == "10086976"
    digest = hashlib.sha256(b"any bytes").hexdigest()
    assert is_released_weights(digest, release=f"vggish-{digest[:8]}.pth")
    assert not is_released_weights(digest, release=f"vggish-{digest[1:9]}.pth")
    assert not is_released_weights(digest, release="vggish.pth")  # no published hash: never "released"
    assert not is_released_weights(digest)  # this digest does not start with 10086976


def test_a_file_that_is_not_the_release_is_used_and_said_to_be_something_else(isolated_hub, tmp_path, saved_file):
    # Named like the release, in the hub cache: still not pretrained, because its bytes are not the release's.
    cached = place(saved_file, hub_checkpoint_dir() / spec.VGGISH_WEIGHTS_FILENAME)
    model, provenance = load_with_provenance("auto")
    assert provenance.pretrained is False and provenance.source == str(cached)
    assert provenance.sha256 == sha256_of(saved_file) and provenance.published_sha256_prefix == "10086976"
    assert sha256_of(saved_file) in provenance.note and "10086976" in provenance.note
    assert "NOT pretrained" in provenance.label and provenance.as_dict()["sha256"] == sha256_of(saved_file)


def test_missing_explicit_path_and_env_file_are_named(isolated_hub, tmp_path, monkeypatch):
    missing = tmp_path / "nope.pth"
    with pytest.raises(WeightsNotFoundError, match="nope.pth"):
        load_vggish(missing, download=False)
    monkeypatch.setenv(spec.WEIGHTS_ENV_VAR, str(tmp_path / "env_nope.pth"))
    with pytest.raises(WeightsNotFoundError, match="env_nope.pth"):
        load_vggish(download=False)


@pytest.mark.parametrize("damage", ["missing_key", "extra_key", "wrong_shape", "not_a_dict", "not_torch"])
def test_loading_is_strict(isolated_hub, tmp_path, saved_state, damage):
    state = dict(saved_state)
    path = tmp_path / f"{damage}.pth"
    if damage == "missing_key":
        del state["embeddings.4.bias"]
    elif damage == "extra_key":
        state["embeddings.6.weight"] = torch.zeros(1)
    elif damage == "wrong_shape":
        state["embeddings.4.bias"] = torch.zeros(127)
    if damage == "not_a_dict":
        torch.save([1, 2, 3], path)
    elif damage == "not_torch":
        path.write_text("this is not a checkpoint")
    else:
        torch.save(state, path)
    with pytest.raises(WarblrError, match=damage):
        load_vggish(path)


def test_bad_arguments_raise_warblr_errors(isolated_hub):
    for kwargs in ({"weights": 5}, {"weights": "random", "seed": "x"}, {"weights": "random", "device": "nodevice"},
                   {"weights": None, "download": False}):
        with pytest.raises(WarblrError):
            load_vggish(**kwargs)
    with pytest.raises(InvalidArgumentError, match="seed"):
        load_vggish("random", seed=1.5)


# PCA parameters: the same resolution order under $WARBLR_VGGISH_PCA.

def save_pca(path, params):
    torch.save({k: torch.from_numpy(v) for k, v in params.items()}, path)


def assert_same_pca(got, params):
    assert set(got) == {spec.PCA_EIGEN_VECTORS_NAME, spec.PCA_MEANS_NAME}
    for key in params:
        np.testing.assert_array_equal(np.asarray(got[key]).reshape(params[key].shape), params[key])


def test_pca_explicit_env_and_hub(isolated_hub, tmp_path, monkeypatch):
    params = random_pca_params(seed=4)
    explicit = tmp_path / "pca.pth"
    save_pca(explicit, params)
    assert_same_pca(load_pca_params(explicit, download=False), params)

    other = random_pca_params(seed=5)
    cached = isolated_hub / "checkpoints" / spec.PCA_PARAMS_FILENAME
    cached.parent.mkdir(parents=True)
    save_pca(cached, other)
    assert_same_pca(load_pca_params("auto", download=False), other)

    monkeypatch.setenv(spec.PCA_ENV_VAR, str(explicit))  # the env var wins over the cache
    assert_same_pca(load_pca_params("auto", download=False), params)


def test_pca_offline_error(isolated_hub, monkeypatch):
    monkeypatch.setattr(torch.hub, "download_url_to_file",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    for download in (False, True):
        with pytest.raises(WeightsNotFoundError) as info:
            load_pca_params("auto", download=download)
        message = str(info.value)
        assert spec.PCA_PARAMS_FILENAME in message and spec.PCA_ENV_VAR in message
        assert str(isolated_hub / "checkpoints" / spec.PCA_PARAMS_FILENAME) in message


def test_pca_file_missing_a_key(isolated_hub, tmp_path):
    path = tmp_path / "pca.pth"
    torch.save({spec.PCA_MEANS_NAME: torch.zeros(128, 1)}, path)
    with pytest.raises(WarblrError, match=spec.PCA_EIGEN_VECTORS_NAME):
        load_pca_params(path)


def _rename_pickle_global(path, old, new):
    """Rewrite the pickle inside a torch zip checkpoint, renaming one global (as older numpy named it)."""
    import zipfile

    renamed = path.with_name("renamed_" + path.name)
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(renamed, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("data.pkl"):
                assert old in data
                data = data.replace(old, new)
            zout.writestr(item, data)
    return renamed


@pytest.mark.parametrize("numpy_module", ["current", "numpy1"])
def test_pca_params_stored_as_numpy_arrays(isolated_hub, tmp_path, numpy_module):
    """torchvggish's released PCA file holds numpy arrays, pickled by numpy 1.x (torchvggish issue #11)."""
    params = random_pca_params(seed=6)
    path = tmp_path / "pca_numpy.pth"
    torch.save(params, path)  # numpy arrays, not tensors
    if numpy_module == "numpy1":
        path = _rename_pickle_global(path, b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert_same_pca(load_pca_params(path, download=False), params)


def test_pickled_code_is_refused(isolated_hub, tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pth"
    torch.save({spec.PCA_EIGEN_VECTORS_NAME: Exploit()}, path)
    with pytest.raises(WarblrError, match="evil.pth"):
        load_pca_params(path)
