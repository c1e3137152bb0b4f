from triptych.db.migrate import Migration, available_migrations


def test_migrations_are_numbered_in_order_and_nonempty():
    migrations = available_migrations()
    assert migrations, "no migrations packaged"
    versions = [m.version for m in migrations]
    assert versions == list(range(1, len(migrations) + 1)), "numbered 1, 2, 3 ... with no gap or repeat"
    assert all(m.sql.strip() for m in migrations)
    assert len({m.name for m in migrations}) == len(migrations), "two migrations with one name"


def test_a_changed_migration_has_another_checksum():
    # The checksum is what refuses an edited migration that was already applied.
    first = available_migrations()[0]
    edited = Migration(first.version, first.name, first.sql + "\n-- edited")
    assert edited.checksum != first.checksum
    assert Migration(first.version, first.name, first.sql).checksum == first.checksum


def test_initial_schema_declares_the_replay_keys():
    sql = available_migrations()[0].sql
    for key in (
        "UNIQUE (bucket, object_key, object_version, sha256)",
        "UNIQUE (image_id, model_name, model_version)",
        "UNIQUE (image_id, model_set)",
        "UNIQUE (dedup_key)",
    ):
        assert key in sql
