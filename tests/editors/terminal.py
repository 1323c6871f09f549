"""A program on a real pseudo-terminal (pexpect), its screen kept by the pyte terminal emulator
and drawn as a PNG with Pillow in Debian's DejaVu Sans Mono: what a person sees in a terminal
program (Neovim), checked as text and kept as a screenshot, offline."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pexpect
import pyte
from PIL import Image, ImageDraw, ImageFont

FONTS = Path("/usr/share/fonts/truetype/dejavu")
SIZE = 15
WAIT = 60.0
BACKGROUND, FOREGROUND = "#14161b", "#e0e2ea"  # Neovim's default dark Normal
#: xterm's colours for pyte's names of the 16 ANSI ones.
PALETTE = {
    "black": "#000000", "red": "#cd0000", "green": "#00cd00", "brown": "#cdcd00",
    "blue": "#0000ee", "magenta": "#cd00cd", "cyan": "#00cdcd", "white": "#e5e5e5",
    "brightblack": "#7f7f7f", "brightred": "#ff0000", "brightgreen": "#00ff00",
    "brightbrown": "#ffff00", "brightblue": "#5c5cff", "brightmagenta": "#ff00ff",
    "brightcyan": "#00ffff", "brightwhite": "#ffffff",
}  # fmt: skip


class _Screen(pyte.Screen):
    """pyte's screen, with the terminal's answers to the program's queries sent back."""

    def __init__(self, columns: int, lines: int, answer: Callable[[str], object]) -> None:
        super().__init__(columns, lines)
        self._answer = answer

    def write_process_input(self, data: str) -> None:
        self._answer(data)


class Terminal:
    """``argv`` on a ``columns`` by ``lines`` pseudo-terminal (TERM=xterm-256color, true
    colour); keys go in with :meth:`send`, the screen is read with :meth:`text`."""

    def __init__(
        self, argv: list[str], env: dict[str, str], cwd: Path, columns: int = 110, lines: int = 32
    ) -> None:
        self.child: pexpect.spawn[bytes] = pexpect.spawn(
            argv[0], argv[1:], env={**env, "TERM": "xterm-256color", "COLORTERM": "truecolor"},
            cwd=str(cwd), dimensions=(lines, columns), encoding=None, timeout=WAIT,
        )  # fmt: skip
        self.screen = _Screen(columns, lines, self.child.send)
        self.stream = pyte.ByteStream(self.screen)

    def _pump(self, timeout: float) -> bool:
        """Feed what the program printed within ``timeout`` s to the screen; whether it did."""
        try:
            data = self.child.read_nonblocking(65536, timeout=timeout)
        except pexpect.TIMEOUT:
            return False
        except pexpect.EOF:
            return False
        self.stream.feed(data)
        return True

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def send(self, keys: str) -> None:
        self.child.send(keys.encode())

    def wait_for(self, what: str) -> str:
        """Until ``what`` is on the screen and the program stopped drawing; the screen."""
        deadline = time.monotonic() + WAIT
        while what not in self.text():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what!r} never showed; the screen:\n{self.text()}")
            self._pump(0.1)
        while self._pump(0.3):  # the rest of this redraw
            pass
        return self.text()

    def close(self) -> None:
        self.child.close(force=True)

    def screenshot(self, path: Path) -> Path:
        """The screen as a PNG: each cell's colours, bold, reverse video, and the cursor."""
        regular = ImageFont.truetype(str(FONTS / "DejaVuSansMono.ttf"), SIZE)
        bold = ImageFont.truetype(str(FONTS / "DejaVuSansMono-Bold.ttf"), SIZE)
        width = round(regular.getlength("M"))
        ascent, descent = regular.getmetrics()
        height = ascent + descent + 2
        image = Image.new("RGB", (self.screen.columns * width, self.screen.lines * height))
        draw = ImageDraw.Draw(image)
        cursor = self.screen.cursor
        for y in range(self.screen.lines):
            row = self.screen.buffer[y]
            for x in range(self.screen.columns):
                cell = row[x]
                fg, bg = _colour(cell.fg, FOREGROUND), _colour(cell.bg, BACKGROUND)
                if cell.reverse != (not cursor.hidden and (x, y) == (cursor.x, cursor.y)):
                    fg, bg = bg, fg
                box = (x * width, y * height, (x + 1) * width - 1, (y + 1) * height - 1)
                draw.rectangle(box, fill=bg)
                if cell.data.strip():
                    font = bold if cell.bold else regular
                    draw.text((x * width, y * height + 1), cell.data, font=font, fill=fg)
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
        return path


def _colour(name: str, default: str) -> str:
    if name == "default":
        return default
    return PALETTE.get(name, f"#{name}")
