import pytest


def test_post_and_list(marconi):
    q = marconi.new_queue()
    ids = marconi.post(q, 3)
    seen, _ = marconi.drain(q)
    assert [m["id"] for m in seen] == ids


@pytest.mark.requires("durable")
def test_durable(marconi):
    pass
