import asyncio, time
import httpx
from bench.procs import Sims, SimSpec
from panelql.providers.http import ClientFactory
from panelql.providers.resilience import ResiliencePolicy

async def run(client, url, n, conc):
    sem = asyncio.Semaphore(conc)
    async def one():
        async with sem:
            r = await client.get(url)
            r.json()
    c0 = time.process_time(); t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return (time.process_time() - c0) / n * 1000, (time.perf_counter() - t0) / n * 1000

async def amain(entry):
    url = entry["base_url"] + "/api/servers/x/backups"
    h = {"Authorization": f"Bearer {entry['credentials']['api_key']}"}
    for label, factory in (("plain", ClientFactory()), ("resilient", ClientFactory(policy=ResiliencePolicy()))):
        client = factory.for_connection("c").build(entry["base_url"], headers=h)
        for conc in (1, 16):
            await run(client, url, 50, conc)
            cpu, wall = await run(client, url, 400, conc)
            print(label, conc, f"cpu {cpu:.2f} ms/req wall {wall:.2f}")
        await factory.aclose()

def main():
    sims = Sims([SimSpec("c", "catalyst-main", {"servers": 25})])
    try:
        asyncio.run(amain(sims.entries[0]))
    finally:
        sims.stop()

if __name__ == "__main__":
    main()
