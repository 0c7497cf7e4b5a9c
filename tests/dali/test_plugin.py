"""Where poisonkit.dali looks for its plugin: $POISONKIT_DALI_PLUGIN alone, else the copy
inside the installed package, else a source checkout's build/dali; a clear error naming
every place looked at when none exists."""
from __future__ import annotations

import pytest

from poisonkit.dali import plugin


@pytest.fixture
def places(tmp_path, monkeypatch):
    """A fake package dir and checkout, with the environment override unset."""
    monkeypatch.delenv(plugin.PLUGIN_ENV, raising=False)
    packaged = tmp_path / "site" / "poisonkit" / "dali" / "lib" / plugin.PLUGIN_NAME
    checkout = tmp_path / "checkout"
    (checkout / "build" / "dali").mkdir(parents=True)
    monkeypatch.setattr(plugin, "PACKAGED_PLUGIN", packaged)
    monkeypatch.setattr(plugin, "_CHECKOUT", checkout)
    return packaged, checkout / "build" / "dali" / plugin.PLUGIN_NAME, checkout


def test_packaged_plugin_comes_before_the_checkout_build(places):
    packaged, built, checkout = places
    (checkout / "CMakeLists.txt").write_text("")
    assert plugin.plugin_candidates() == [packaged, built]
    built.write_bytes(b"built")
    assert plugin.plugin_path() == built  # only the checkout's exists
    packaged.parent.mkdir(parents=True)
    packaged.write_bytes(b"packaged")
    assert plugin.plugin_path() == packaged


def test_installed_package_does_not_look_outside_itself(places):
    packaged, _, _ = places  # no CMakeLists.txt: not a source checkout
    assert plugin.plugin_candidates() == [packaged]
    assert plugin.plugin_path() == packaged


def test_environment_override_is_the_only_place(places, tmp_path, monkeypatch):
    packaged, built, checkout = places
    (checkout / "CMakeLists.txt").write_text("")
    built.write_bytes(b"built")
    monkeypatch.setenv(plugin.PLUGIN_ENV, str(tmp_path / "mine.so"))
    assert plugin.plugin_candidates() == [tmp_path / "mine.so"]
    assert plugin.plugin_path() == tmp_path / "mine.so"  # missing: not silently the build


def test_missing_plugin_error_names_every_place(places):
    pytest.importorskip("nvidia.dali")
    packaged, built, checkout = places
    (checkout / "CMakeLists.txt").write_text("")
    with pytest.raises(FileNotFoundError) as err:
        plugin.load()
    message = str(err.value)
    assert str(packaged) in message and str(built) in message
    assert "make dali" in message and plugin.PLUGIN_ENV in message
