"""The page frame shared by every page: the header with the logo (``assets/logo.svg``)."""

from __future__ import annotations

import reflex as rx

from enrichment_app import routes


def callout_when(
    text: rx.Var[str], *, icon: str = "triangle_alert", color: str = "red", **props: object
) -> rx.Component:
    """A callout saying ``text``, shown while it is not empty (red, a warning sign: an error)."""
    return rx.cond(text != "", rx.callout(text, icon=icon, color_scheme=color, **props))


def page_frame(*children: rx.Component) -> rx.Component:
    return rx.box(
        rx.hstack(
            rx.link(
                rx.hstack(
                    rx.image(src="/logo.svg", alt="", width="28px", height="28px", id="logo"),
                    rx.heading("Enrichment tables", size="4"),
                    align="center",
                ),
                href=routes.TABLES,
                underline="none",
                color_scheme="gray",
                high_contrast=True,
            ),
            padding_x="24px",
            padding_y="12px",
            border_bottom="1px solid var(--gray-4)",
            width="100%",
        ),
        rx.vstack(
            *children,
            padding="24px",
            spacing="4",
            width="100%",
            max_width="1400px",
            margin_x="auto",
        ),
        width="100%",
    )
