from triptych.db.migrate import available_migrations


def test_migrations_are_numbered_in_order_and_nonempty():
    migrations = available_migrations()
    assert migrations, "no migrations packaged"
    versions = [m.version for m in migrations]
    assert versions == sorted(versions) and versions[0] == 1
    assert all(m.sql.strip() and len(m.checksum) == 64 for m in migrations)


def test_initial_schema_declares_the_replay_keys():
    sql = available_migrations()[0].sql
    for key in (
        "UNIQUE (bucket, object_key, object_version, sha256)",
        "UNIQUE (image_id, model_name, model_version)",
        "UNIQUE (image_id, model_set)",
        "UNIQUE (dedup_key)",
    ):
        assert key in sql
