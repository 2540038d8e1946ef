"""authenticator.ec2: DescribeInstances against moto's EC2, bounded TTL cache."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from authenticator.arn import canonicalize_arn
from authenticator.ec2 import EC2PrivateDNSResolver
from authenticator.identity import Identity
from authenticator.mapping import MappingEntry, MappingSet, evaluate_mapping

REGION = "us-east-1"


class FakeClock:
    """A monotonic clock tests move by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def ec2_endpoint() -> Iterator[str]:
    """moto's EC2 on 127.0.0.1 (a random port), without its AMI catalogue (slow)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
        server.stop()


def _session() -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


@pytest.fixture(scope="module")
def instances(ec2_endpoint: str) -> dict[str, str]:
    """Three running instances: instance ID -> private DNS name."""
    client = _session().client("ec2", endpoint_url=ec2_endpoint)
    # moto does not check the AMI (its catalogue is not even loaded here).
    reply = client.run_instances(
        ImageId="ami-12c6146b", MinCount=3, MaxCount=3, InstanceType="t3.micro"
    )
    return {i["InstanceId"]: i["PrivateDnsName"] for i in reply["Instances"]}


def resolver(endpoint: str, **kwargs: object) -> EC2PrivateDNSResolver:
    """A resolver against moto with test credentials."""
    return EC2PrivateDNSResolver(
        region=REGION,
        endpoint_url=endpoint,
        session=_session(),
        **kwargs,  # type: ignore[arg-type]  # keyword passthrough for the knobs under test
    )


class TestEC2PrivateDNSResolver:
    """Real DescribeInstances calls, cached with a size cap and a TTL."""

    def test_resolves_the_private_dns_name(
        self, ec2_endpoint: str, instances: dict[str, str]
    ) -> None:
        """An existing instance's PrivateDnsName comes back."""
        iid, name = next(iter(instances.items()))
        assert name.endswith(".internal")
        assert resolver(ec2_endpoint)(iid) == name

    def test_cache_hit_until_ttl_then_refetch(
        self, ec2_endpoint: str, instances: dict[str, str]
    ) -> None:
        """A second lookup within the TTL is a hit; after the TTL EC2 is asked again."""
        clock = FakeClock()
        r = resolver(ec2_endpoint, ttl_seconds=60, clock=clock)
        iid, name = next(iter(instances.items()))
        assert r(iid) == name and r(iid) == name
        assert (r.stats.misses, r.stats.hits) == (1, 1)
        clock.now += 61
        assert r(iid) == name
        assert (r.stats.misses, r.stats.hits) == (2, 1)

    def test_size_cap_evicts_least_recently_used(
        self, ec2_endpoint: str, instances: dict[str, str]
    ) -> None:
        """The cache never holds more than max_entries; the oldest entry goes."""
        r = resolver(ec2_endpoint, max_entries=2)
        ids = list(instances)
        for iid in ids:
            assert r(iid) == instances[iid]
        assert len(r) == 2 and r.stats.evictions == 1
        r(ids[0])  # evicted: fetched again
        assert r.stats.misses == 4

    def test_unknown_instance_is_empty_and_briefly_remembered(
        self, ec2_endpoint: str
    ) -> None:
        """A made-up instance ID gives "" and is not asked again for a while."""
        clock = FakeClock()
        r = resolver(ec2_endpoint, negative_ttl_seconds=30, clock=clock)
        assert r("i-0123456789abcdef0") == ""
        assert r("i-0123456789abcdef0") == ""
        assert (r.stats.misses, r.stats.hits, r.stats.failures) == (1, 1, 1)
        clock.now += 31
        r("i-0123456789abcdef0")
        assert r.stats.misses == 2

    def test_unreachable_ec2_is_empty_and_not_cached(self) -> None:
        """A network failure gives "" and is not cached."""
        r = EC2PrivateDNSResolver(
            region=REGION,
            endpoint_url="http://127.0.0.1:9",
            session=_session(),
            timeout_seconds=0.5,
        )
        assert r("i-0123abcd") == ""
        assert len(r) == 0

    def test_concurrent_lookups_share_one_call(
        self, ec2_endpoint: str, instances: dict[str, str]
    ) -> None:
        """Eight threads asking for one ID at once produce a single EC2 call."""
        r = resolver(ec2_endpoint)
        iid, name = next(iter(instances.items()))
        results: list[str] = []
        barrier = threading.Barrier(8)

        def ask() -> None:
            barrier.wait()
            results.append(r(iid))

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [name] * 8
        assert r.stats.misses == 1

    def test_node_mapping_through_moto(
        self, ec2_endpoint: str, instances: dict[str, str]
    ) -> None:
        """system:node:{{EC2PrivateDNSName}} renders the instance's real DNS name."""
        iid, name = next(iter(instances.items()))
        arn = f"arn:aws:sts::111122223333:assumed-role/NodeRole/{iid}"
        caller = Identity(
            arn, canonicalize_arn(arn), "111122223333", "AROA1", iid, "ASIA1"
        )
        entry = MappingEntry(
            "arn:aws:iam::111122223333:role/NodeRole",
            "system:node:{{EC2PrivateDNSName}}",
            ("system:nodes",),
            "role",
        )
        ms = MappingSet("configMap", (entry,), (), ())
        result = evaluate_mapping(caller, [ms], ec2_private_dns=resolver(ec2_endpoint))
        assert result.user is not None
        assert result.user.username == f"system:node:{name}"
