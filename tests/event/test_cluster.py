import pytest

from gdcld_zoo.event import EventError
from gdcld_zoo.event.cluster import DaskCluster, check_scheduler

pytest.importorskip("distributed")


class FakeFuture:
    def __init__(self, args):
        self.args = args

    def result(self):
        return self.args[0]


class FakeClient:
    """The two Client methods DaskCluster uses, recording what is submitted."""

    def __init__(self, workers):
        self.workers, self.submitted = workers, []

    def scheduler_info(self):
        return {"workers": dict.fromkeys(range(self.workers))}

    def submit(self, function, *args, pure=True):
        self.submitted.append(args[0])
        return FakeFuture(args)


def test_blocks_go_to_the_cluster_a_bounded_window_ahead_of_the_driver():
    client = FakeClient(workers=2)
    cluster = DaskCluster(client, "plugin-name", ahead=3)
    waits = [cluster.submit(f"block{i}", 4, "folder") for i in range(10)]
    assert client.submitted == [] and cluster.workers == 2
    assert waits[0]() == "block0" and client.submitted == ["block0", "block1", "block2"]
    waits[1]()
    assert len(client.submitted) == 4
    for wait in waits[2:]:
        wait()
    assert client.submitted == [f"block{i}" for i in range(10)]
    assert DaskCluster(FakeClient(workers=3), "p").ahead == 12


@pytest.mark.parametrize("text,expected", [(None, None), ("processes:2", ("processes", 2)),
                                           ("tcp://10.0.0.1:8786", ("address", "tcp://10.0.0.1:8786"))])
def test_scheduler_forms(text, expected):
    assert check_scheduler(text, "demo") == expected


@pytest.mark.parametrize("text", ["processes:0", "processes:x", "threads", "local"])
def test_bad_schedulers_say_what_to_pass(text):
    with pytest.raises(EventError, match="processes:"):
        check_scheduler(text)
