"""The shipped Prometheus configuration and alerting rules, checked by Prometheus's own tool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.prometheus

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is needed (Debian package prometheus; .ci/run installs it)"
    return subprocess.run([tool, *args], capture_output=True, text=True, cwd=DEPLOY, check=False)


def test_rules_are_valid():
    result = promtool("check", "rules", "rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 16 rules found" in result.stdout


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-compose.yml"])
def test_scrape_configs_are_valid(config):
    result = promtool("check", "config", config)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass():
    result = promtool("test", "rules", "rules_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_rule_has_a_unit_test():
    import yaml

    rules = yaml.safe_load((DEPLOY / "rules.yml").read_text())
    names = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = yaml.safe_load((DEPLOY / "rules_test.yml").read_text())
    tested = {
        case["alertname"]
        for test in tests["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert names == tested
