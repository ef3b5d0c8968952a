import pytest

from glueline.shared.tablename import TableName


@pytest.mark.parametrize("name", ["transactions; drop table x", "Public.T", "a.b.c", "1abc", ""])
def test_table_names_from_settings_are_validated(name):
    with pytest.raises(ValueError):
        TableName.parse(name)


def test_table_name_defaults_to_public_schema():
    assert str(TableName.parse("transactions")) == "public.transactions"
