"""Root conftest: registers warblr's grading plugin for `pytest exercises`."""

pytest_plugins = ["warblr.grading.plugin"]
