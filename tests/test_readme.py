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


def test_ci_pins_every_dependency_inside_the_ranges_users_get(repo):
    # .ci/run installs README's command under .ci/constraints.txt; .ci/latest runs it unpinned. Every
    # package pyproject.toml names (dependencies and the test extra) must be pinned there, to a version
    # its range admits: otherwise CI tests a combination no user can install.
    import tomllib

    from packaging.requirements import Requirement

    ci = (repo / ".ci" / "run").read_text()
    assert 'PIP_CONSTRAINT="$PWD/.ci/constraints.txt"' in ci
    assert _commands(repo)[1] in (repo / ".ci" / "latest").read_text().splitlines()
    pins = {}
    for line in (repo / ".ci" / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    project = tomllib.loads((repo / "pyproject.toml").read_text())
    required = project["project"]["dependencies"] + project["project"]["optional-dependencies"]["test"]
    required += project["build-system"]["requires"]
    for spec in map(Requirement, required):
        name = spec.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not pinned in .ci/constraints.txt"
        assert spec.specifier.contains(pins[name], prereleases=True), (name, pins[name], str(spec.specifier))
