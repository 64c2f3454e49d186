"""The HTTP front against the same local upstream (issue 18): N sequential
httpx requests through the front, the same sent directly with the token in
a header, the same through `vaultctl request` subprocesses, and N with 64
in flight (httpx.AsyncClient) through the front and directly. Prints one
JSON object (requests per second).

    python front.py FRONT_SOCKET ORIGIN HEADERFILE VAULTCTL N
"""
import asyncio
import json
import subprocess
import sys
import time

import httpx

front, origin, headerfile, vaultctl, n = sys.argv[1:6]
n = int(n)
name, _, value = open(headerfile).read().strip().partition(":")
direct_headers = {name.strip(): value.strip()}


def sequential(client, url, headers):
    for _ in range(20):
        client.get(url, headers=headers)
    t = time.perf_counter()
    for _ in range(n):
        r = client.get(url, headers=headers)
        assert r.status_code == 200, r
    return n / (time.perf_counter() - t)


with httpx.Client(transport=httpx.HTTPTransport(uds=front)) as c:
    via_front = sequential(c, "http://bench/api", {})
with httpx.Client() as c:
    direct = sequential(c, origin + "/api", direct_headers)

t = time.perf_counter()
for _ in range(n):
    subprocess.run(
        [vaultctl, "request", "bench", origin + "/api", "-f", "-s"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
via_subprocess = n / (time.perf_counter() - t)


async def in_flight(transport, url, headers, width=64):
    async with httpx.AsyncClient(
        transport=transport, limits=httpx.Limits(max_connections=width)
    ) as c:
        for _ in range(width):
            await c.get(url, headers=headers)
        per = n // width

        async def worker():
            for _ in range(per):
                r = await c.get(url, headers=headers)
                assert r.status_code == 200, r

        t = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(width)))
        return per * width / (time.perf_counter() - t)


async_front = asyncio.run(
    in_flight(httpx.AsyncHTTPTransport(uds=front), "http://bench/api", {})
)
async_direct = asyncio.run(
    in_flight(httpx.AsyncHTTPTransport(), origin + "/api", direct_headers)
)
print(
    json.dumps(
        {
            "n": n,
            "front": round(via_front),
            "direct": round(direct),
            "subprocess": round(via_subprocess),
            "async_front": round(async_front),
            "async_direct": round(async_direct),
            "httpx": httpx.__version__,
        }
    )
)
