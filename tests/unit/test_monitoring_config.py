"""What the stack writes for Prometheus and Alertmanager, from the settings."""

import pytest

from triptych.config import Settings
from triptych.stack.services.monitoring import RULES_DIR, Alertmanager, Prometheus


def jobs(config: dict) -> dict:
    return {job["job_name"]: job for job in config["scrape_configs"]}


def test_prometheus_scrapes_the_replicas_targets_the_servers_and_loads_only_the_rules(tmp_path):
    config = Prometheus(Settings(data_dir=tmp_path, prometheus_scrape_interval="5s")).config()
    scraped = jobs(config)
    assert set(scraped) == {"functions", "supervisor", "api", "dashboard", "prometheus", "minio"}
    assert scraped["functions"]["file_sd_configs"][0]["files"] == [str(tmp_path / "functions" / "targets" / "*.json")]
    assert scraped["minio"]["metrics_path"] == "/minio/v2/metrics/cluster"
    assert config["rule_files"] == [str(RULES_DIR / "triptych.yml")], "the rule tests beside it are not rules"
    assert config["global"]["scrape_timeout"] == "5s"


@pytest.mark.parametrize("interval,timeout", [("2s", "2s"), ("10s", "10s"), ("1m", "10s")])
def test_the_scrape_timeout_never_exceeds_the_interval(tmp_path, interval, timeout):
    config = Prometheus(Settings(data_dir=tmp_path, prometheus_scrape_interval=interval)).config()
    assert config["global"]["scrape_timeout"] == timeout


def test_minio_is_not_scraped_when_it_is_not_ours(tmp_path):
    assert "minio" not in jobs(Prometheus(Settings(data_dir=tmp_path, s3_endpoint="http://s3.example:9000")).config())


def test_alertmanager_posts_to_the_api_receiver_with_the_local_key(tmp_path):
    config = Alertmanager(Settings(data_dir=tmp_path, api_port=18000)).config()
    (receiver,) = config["receivers"]
    (hook,) = receiver["webhook_configs"]
    assert hook["url"] == "http://127.0.0.1:18000/alerts/alertmanager" and hook["send_resolved"]
    assert hook["http_config"]["authorization"]["credentials_file"] == str(tmp_path / "keys" / "local.key")
    assert config["route"]["receiver"] == "triptych" and config["route"]["routes"] == []


def test_a_webhook_of_yours_gets_every_alert_too(tmp_path):
    config = Alertmanager(Settings(data_dir=tmp_path, alert_webhook_url="https://hooks.example/x")).config()
    assert [r["name"] for r in config["receivers"]] == ["triptych", "webhook"]
    routes = config["route"]["routes"]
    assert routes[0] == {"receiver": "webhook", "continue": True} and routes[1] == {"receiver": "triptych"}


def test_supervisors_of_other_hosts_are_found_by_http_discovery_and_split_into_the_same_two_jobs(tmp_path):
    import shutil
    import subprocess

    import yaml

    settings = Settings(data_dir=tmp_path, prometheus_remote_supervisors=["10.251.0.15:9400", "10.251.0.16:9400"])
    scraped = jobs(Prometheus(settings).config())
    for name, action in (("functions", "drop"), ("supervisor", "keep")):
        assert [c["url"] for c in scraped[name]["http_sd_configs"]] == [
            "http://10.251.0.15:9400/targets",
            "http://10.251.0.16:9400/targets",
        ]
        assert scraped[name]["relabel_configs"] == [
            {"source_labels": ["component"], "regex": "supervisor", "action": action}
        ]
    assert "http_sd_configs" not in jobs(Prometheus(Settings(data_dir=tmp_path)).config())["functions"]
    if shutil.which("promtool"):  # Prometheus itself accepts the file
        path = tmp_path / "prometheus.yml"
        path.write_text(yaml.safe_dump(Prometheus(settings).config()))
        check = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
