"""Fixtures shared by test files: the smoke book, built once per session.

``test_book.py`` checks how it was run and built; ``test_browser.py`` opens its pages.
"""

import types

import pytest

from forgetting_aus import cache, runner, truth_audit


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    book_dir = tmp_path_factory.mktemp("book")
    results_dir = tmp_path_factory.mktemp("results")
    audit_dir = tmp_path_factory.mktemp("code_audit")
    truth_record = tmp_path_factory.mktemp("truth_audit") / "opened.tsv"
    overrides = {"results_dir": str(results_dir)}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(cache.AUDIT_ENV, str(audit_dir))  # inherited by the kernels and their workers
        patch.setenv(truth_audit.AUDIT_ENV, str(truth_record))
        assert runner.main(["--profile", "smoke", "--book-dir", str(book_dir), "--force", "--build",
                            "--set", f"results_dir={results_dir}"]) == 0
    return types.SimpleNamespace(book_dir=book_dir, overrides=overrides, audit_dir=audit_dir, truth_record=truth_record)


@pytest.fixture(scope="session")
def smoke_book(smoke_run):
    return smoke_run.book_dir
