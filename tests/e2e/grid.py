"""Finding cells on the Glide Data Grid canvas, which has no DOM per cell."""

from __future__ import annotations

from dataclasses import dataclass

from playwright.sync_api import Page

ROW_MARKER_WIDTH = 33
HEADER_HEIGHT = 38
ROW_HEIGHT = 34


@dataclass
class GridGeometry:
    x: float
    y: float
    widths: list[int]

    def cell(self, col: int, row: int) -> tuple[float, float]:
        x = self.x + ROW_MARKER_WIDTH + sum(self.widths[:col]) + self.widths[col] / 2
        return x, self.y + HEADER_HEIGHT + ROW_HEIGHT * row + ROW_HEIGHT / 2

    def header(self, col: int) -> tuple[float, float]:
        x = self.x + ROW_MARKER_WIDTH + sum(self.widths[:col]) + self.widths[col] / 2
        return x, self.y + HEADER_HEIGHT / 2


def open_grid(page: Page, widths: list[int], *, name: str = "Demo") -> GridGeometry:
    canvas = page.locator('#table-grid canvas[data-testid="data-grid-canvas"]').first
    canvas.wait_for()
    # The grid is drawn once the page's state has arrived: wait for the table's name.
    page.locator("#table-name").filter(has_text=name).wait_for()
    box = canvas.bounding_box()
    assert box is not None
    return GridGeometry(box["x"], box["y"], widths)


def drag(page: Page, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=8)
    page.mouse.up()


def watch_status(page: Page) -> None:
    """Record every text the job status badge shows, so fast transitions are not missed."""
    page.evaluate(
        """() => {
          window.__statuses = [];
          const record = () => {
            const el = document.querySelector('#job-status');
            const text = el ? el.textContent : null;
            if (text && window.__statuses[window.__statuses.length - 1] !== text) window.__statuses.push(text);
          };
          new MutationObserver(record).observe(document.body, {subtree: true, childList: true, characterData: true});
          record();
        }"""
    )


def seen_statuses(page: Page) -> list[str]:
    return page.evaluate("window.__statuses")
