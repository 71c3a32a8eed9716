import argparse

import pytest

from skiff.api import registry_config


def _args(**kw):
    parser = argparse.ArgumentParser()
    registry_config.add_flags(parser)
    args = parser.parse_args([])
    for k, v in kw.items():
        setattr(args, k, v)
    return args


def test_file_then_flags_over_the_environment():
    args = _args(max_concurrent_uploads=2)
    registry_config.merge(args, {"insecure-registries": ["a.example:5000"],
                                 "registry-mirrors": ["https://mirror.example/"]})
    opts = registry_config.options(args, {"SKIFF_INSECURE_REGISTRIES": "10.0.0.0/8",
                                          "SKIFF_MAX_CONCURRENT_DOWNLOADS": "7",
                                          "SKIFF_REGISTRY_ALLOW": ""})
    assert opts.insecure == ["10.0.0.0/8", "a.example:5000"]
    assert opts.mirrors == ["https://mirror.example"]
    assert opts.concurrency == 7 and opts.upload_concurrency == 2
    assert opts.allowed == ()


@pytest.mark.parametrize("settings, message", [
    ({"registry-mirrors": ["mirror.example"]}, "must use either"),
    ({"registry-mirrors": ["https://m.example/v2/"]}, "path, query, or fragment"),
    ({"insecure-registries": "a:5000"}, "list of strings"),
    ({"max-concurrent-downloads": 0}, "positive integer"),
    ({"max-concurrent-uploads": True}, "positive integer"),
])
def test_bad_settings(settings, message):
    with pytest.raises(registry_config.RegistryConfigError, match=message):
        registry_config.merge(_args(), settings)
