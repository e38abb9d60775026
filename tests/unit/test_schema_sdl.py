from panelql.schema.root import SDL_PATH, export_sdl


def test_exported_sdl_matches_the_code() -> None:
    # Run `make schema` (panelql schema export) after changing the schema, and review the diff.
    assert SDL_PATH.read_text() == export_sdl(), "schema.graphql is stale: run `make schema`"


def test_contract_names_are_present() -> None:
    sdl = export_sdl()
    for name in ("type Server", "type Node", "type Account", "type Backup", "type Invoice",
                 "type DnsZone", "type DnsRecord", "type Provider", "enum ServerStatus",
                 "enum ProviderKind", "union Resource", "type PageInfo"):
        assert name in sdl
