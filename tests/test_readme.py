"""README's two set-up commands are the contract: CI runs the test command verbatim."""

import re


def _commands(repo):
    return re.findall(r"^(python3 -m venv \.venv && .+)$", (repo / "README.md").read_text(), flags=re.M)


def test_readme_states_two_setup_commands(repo):
    cmds = _commands(repo)
    assert len(cmds) == 2, cmds
    assert "mixplan plan" in cmds[0] and "pytest" in cmds[1]


def test_ci_runs_the_readme_test_command_verbatim(repo):
    ci = (repo / ".ci" / "run").read_text()
    assert _commands(repo)[1] in ci.splitlines()


def test_readme_main_command_uses_shipped_files(repo):
    cmd = _commands(repo)[0]
    for path in re.findall(r"\b((?:examples|pools|proxies)/[\w./-]+)", cmd):
        assert (repo / path).exists(), path
