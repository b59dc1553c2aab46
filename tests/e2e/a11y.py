"""axe-core (Deque's accessibility engine, the npm package in the workspace's devDependencies) run on a
rendered screen: every violation is a failure, named by rule, impact and the elements it found.

The engine is injected from node_modules (`npm ci` installs it with the front ends); nothing is
fetched. WCAG 2.0/2.1 A and AA rules and axe's best practices are checked: the same set a reviewer
runs with the browser extension.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import REPO_ROOT

AXE_JS = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def _describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v.get('impact')}): {v['help']}")
        for node in v["nodes"][:6]:
            lines.append(f"    {' '.join(node['target'])}: {node.get('failureSummary', '').splitlines()[-1:]}")
    return "\n  ".join(lines)


SETTLED_JS = """() => !document.querySelector('.el-loading-mask, [class*="-enter-active"], [class*="-leave-active"]')"""


def settle(page: Any) -> None:
    """Wait until nothing fades in or out (a loading mask, a dialog, a message): half-transparent layers
    lie over the page's colours, and axe would judge the blend."""
    page.wait_for_function(SETTLED_JS)


def check_axe(page: Any, screen: str) -> dict[str, Any]:
    """Run axe-core on the page as it is now; fail with every violation found."""
    settle(page)
    assert AXE_JS.is_file(), f"axe-core is missing at {AXE_JS}: run `npm ci` at the repository root"
    if not page.evaluate("() => Boolean(window.axe)"):
        page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate(
        """(tags) => window.axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] })
             .then((r) => ({ violations: r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
               nodes: v.nodes.map((n) => ({ target: n.target.map(String), failureSummary: n.failureSummary })) })),
               passes: r.passes.length }))""",
        TAGS,
    )
    assert result["passes"] > 0, f"{screen}: axe-core checked nothing"
    assert not result["violations"], f"{screen}: axe-core found violations:\n  " + _describe(result["violations"])
    return result


PHONE_WIDTHS = ((390, 844), (360, 780))  # a common phone, and the narrow one the 适老化 reviews use


def check_phone_screen(page: Any, name: str) -> None:
    """A phone screen as elders get it: the elder-mode size rules and axe-core at 390 and 360 px wide,
    a screenshot of each into test-artifacts/e2e/; the page is left at 390 px."""
    from tests.e2e.conftest import shot
    from tests.e2e.elder import check_elder_mode

    for width, height in PHONE_WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(100)  # one layout pass at the new width
        check_elder_mode(page, f"{name} at {width} px")
        check_axe(page, f"{name} at {width} px")
        shot(page, f"{name}-{width}")
    page.set_viewport_size({"width": PHONE_WIDTHS[0][0], "height": PHONE_WIDTHS[0][1]})


def check_desk_screen(page: Any, name: str) -> None:
    """A console page: axe-core finds nothing; a screenshot into test-artifacts/e2e/."""
    from tests.e2e.conftest import shot

    page.wait_for_load_state("networkidle")
    check_axe(page, name)
    shot(page, name)
