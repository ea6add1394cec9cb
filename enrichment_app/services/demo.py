"""The demo table seeded on first start. Its enrichers work offline, so it runs with no keys."""

from __future__ import annotations

from sqlmodel import Session, select

from enrichment_app.db.models import DataTable
from enrichment_app.domain import ColumnKind
from enrichment_app.services.tables import ColumnSpec, create_table

DEMO_TABLE_NAME = "Demo: companies"

COMPANIES: tuple[tuple[str, str, str], ...] = (
    ("Acme Robotics", "acme-robotics.example", "hello@acme-robotics.example"),
    ("Blue Harbor Logistics", "blueharbor.example", "ops@blueharbor.example"),
    ("Cedar & Pine Studio", "cedarpine.example", "studio@cedarpine.example"),
    ("Delta Grid Energy", "deltagrid.example", "contact@DeltaGrid.example"),
    ("Evergreen Health", "evergreen-health.example", "care@evergreen-health.example"),
    ("Fjord Analytics", "fjord-analytics.example", "data@fjord-analytics.example"),
    ("Granite Security", "granitesec.example", "soc@granitesec.example"),
    ("Helios Solar", "helios-solar.example", "sun@helios-solar.example"),
    ("Iris Biotech", "irisbio.example", "lab@irisbio.example"),
    ("Juniper Foods", "juniperfoods.example", "orders@juniperfoods.example"),
    ("Kestrel Drones", "kestrel-drones.example", "fly@kestrel-drones.example"),
    ("Lumen Learning", "lumenlearning.example", "teach@lumenlearning.example"),
    ("Meridian Bank", "meridianbank.example", "support@meridianbank.example"),
    ("Nimbus Cloud", "nimbuscloud.example", "sales@nimbuscloud.example"),
    ("Orchid Travel", "orchid.travel.example", "trips@orchid.travel.example"),
    ("Pioneer Freight", "pioneerfreight.example", "dispatch@pioneerfreight.example"),
    ("Quartz Payments", "quartzpay.example", "billing@quartzpay.example"),
    ("Redwood Legal", "redwoodlegal.example", "not an email address"),
    ("Summit Outdoor", "summitoutdoor.example", "gear@summitoutdoor.example"),
    ("Tidal Media", "tidalmedia.example", "press@tidalmedia.example"),
    ("Umbra Games", "umbragames.example", "play@umbragames.example"),
    ("Vertex Manufacturing", "vertexmfg.example", "plant@vertexmfg.example"),
    ("Willow Insurance", "willowinsure.example", "claims@willowinsure.example"),
    ("Xenon Labs", "xenonlabs.example", "research@xenonlabs.example"),
    ("Yellowtail Fisheries", "yellowtail.example", "catch@yellowtail.example"),
)

DEMO_COLUMNS = (
    ColumnSpec(name="Company"),
    ColumnSpec(name="Website"),
    ColumnSpec(name="Contact email"),
    ColumnSpec(
        name="Email domain",
        kind=ColumnKind.ENRICHMENT,
        enricher="email_domain",
        config={"column": "Contact email"},
    ),
    ColumnSpec(
        name="Intro line",
        kind=ColumnKind.ENRICHMENT,
        enricher="template",
        config={"template": "Hi {Company} team, we noticed {Website} and would love to talk."},
    ),
)


def seed_demo(session: Session, *, max_cell_chars: int) -> DataTable | None:
    """Create the demo table if the database has no tables yet. Returns it if created."""
    if session.exec(select(DataTable.id).limit(1)).first() is not None:
        return None
    table = create_table(
        session=session,
        name=DEMO_TABLE_NAME,
        columns=DEMO_COLUMNS,
        rows=COMPANIES,
        max_cell_chars=max_cell_chars,
    )
    return table
