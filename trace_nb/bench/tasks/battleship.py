"""Battleship (tutorial 07): an agent class whose ``reason`` and ``act`` methods are code
parameters, trained from game feedback.

A 5x5 sea with two ships (3 and 2 cells), 12 shots a game. Each step plays one training
game and sends its feedback (hits, misses, invalid shots, or the exception) to the shot
that went wrong first. The score is the fraction of ship cells hit, averaged over 10
held-out boards; success is at least 60% (the paper reports about 60% of ship squares hit).
"""

from __future__ import annotations

import random
from typing import Any

from ...graph import ExecutionError, bundle, node
from ...modules import model
from .base import NO_VALUES, Score, TaskInstance, current_values, feedback_of, is_student, reply

SIZE, SHIP_LENGTHS, SHOTS_PER_GAME, EVAL_BOARDS, SUCCESS = 5, (3, 2), 12, 10, 0.6


class Board:
    """A SIZE x SIZE sea with ships placed from ``seed``, and the shots fired at it."""

    def __init__(self, seed: int):
        rng = random.Random(f"board-{seed}")
        self.ships: set[tuple[int, int]] = set()
        for length in SHIP_LENGTHS:
            while True:
                across = rng.random() < 0.5
                row = rng.randrange(SIZE if across else SIZE - length + 1)
                col = rng.randrange(SIZE - length + 1 if across else SIZE)
                cells = {(row, col + i) if across else (row + i, col) for i in range(length)}
                if not cells & self.ships:
                    self.ships |= cells
                    break
        self.shots: dict[tuple[int, int], str] = {}

    def view(self) -> list[str]:
        return ["".join(self.shots.get((r, c), ".") for c in range(SIZE)) for r in range(SIZE)]

    def fire(self, shot: Any) -> str:
        ok = isinstance(shot, tuple | list) and len(shot) == 2
        if not ok or not all(isinstance(v, int) for v in shot):
            return f"invalid: {shot!r} is not a (row, col) pair of ints"
        row, col = shot
        if not (0 <= row < SIZE and 0 <= col < SIZE):
            return f"invalid: {tuple(shot)} is off the board"
        if (row, col) in self.shots:
            return f"invalid: {(row, col)} was already fired at"
        hit = (row, col) in self.ships
        self.shots[(row, col)] = "X" if hit else "o"
        return "hit" if hit else "miss"

    def all_sunk(self) -> bool:
        return all(self.shots.get(cell) == "X" for cell in self.ships)


@model
class Agent:
    """A Battleship player: reason() reads the board, act() picks the next shot."""

    @bundle(trainable=True)
    def reason(self, board_view):
        """Summarise the board view (rows of '.', 'X', 'o') into a plan for act()."""
        return {"hits": [], "unknown": []}

    @bundle(trainable=True)
    def act(self, plan):
        """Choose the next shot, a (row, col) tuple, from the plan made by reason()."""
        return (0, 0)

    def forward(self, board_view):
        return self.act(self.reason(board_view))


def play(agent: Any, seed: int) -> tuple[int, int, str, Any]:
    """One game: (hits, ship cells, feedback text, the node the feedback is about)."""
    board = Board(seed)
    hits = misses = 0
    invalid: list[str] = []
    target = shot = None
    for turn in range(1, SHOTS_PER_GAME + 1):
        try:
            shot = agent(node(board.view(), name="board_view"))
        except ExecutionError as err:
            text = (
                f"{hits} hits before turn {turn}, where the agent raised an exception and "
                f"the game stopped: {err.exception_node.describe()}"
            )
            return hits, len(board.ships), text, err.exception_node
        outcome = board.fire(shot.data)
        if outcome == "hit":
            hits += 1
        elif outcome == "miss":
            misses += 1
        else:
            invalid.append(f"turn {turn}: {outcome}")
            target = target or shot
        if board.all_sunk():
            break
    text = (
        f"{hits} hits, {misses} misses and {len(invalid)} invalid shots in {turn} turns "
        f"({len(board.ships)} ship cells)."
    )
    if invalid:
        text += (
            " Invalid shots waste turns (" + "; ".join(invalid[:3]) + "). "
            "Every shot must be a new (row, col) on the board."
        )
    elif board.all_sunk():
        text += " All ships sunk: well played."
    else:
        text += " Too many misses: after a hit, fire at the neighbouring cells to finish the ship."
    return hits, len(board.ships), text, target or shot


REASON_CELLS = '''def reason(self, board_view):
    """Summarise the board view (rows of '.', 'X', 'o') into a plan for act()."""
    hits, unknown = [], []
    for row, line in enumerate(board_view):
        for col, cell in enumerate(line):
            if cell == "X":
                hits.append((row, col))
            elif cell == ".":
                unknown.append((row, col))
    return {"hits": hits, "unknown": unknown}
'''

ACT_SCAN = '''def act(self, plan):
    """Choose the next shot, a (row, col) tuple, from the plan made by reason()."""
    return plan["unknown"][0]
'''

ACT_HUNT = '''def act(self, plan):
    """Choose the next shot, a (row, col) tuple, from the plan made by reason()."""
    unknown = set(plan["unknown"])
    for row, col in plan["hits"]:
        for cell in [(row - 1, col), (row + 1, col), (row, col - 1), (row, col + 1)]:
            if cell in unknown:
                return cell
    for row, col in plan["unknown"]:
        if (row + col) % 2 == 0:
            return (row, col)
    return plan["unknown"][0]
'''


class BattleshipTask(TaskInstance):
    def __init__(self, seed: int):
        self.name, self.seed = "battleship", seed
        self.agent = Agent()
        self.eval_boards = [10_000 + 100 * seed + k for k in range(EVAL_BOARDS)]
        self.objective = (
            "The agent plays Battleship on a 5x5 board with 12 shots. Change the code of its "
            "methods in #Variables so that it hits as many ship cells as possible, following "
            "#Feedback."
        )

    def parameters(self) -> list:
        return list(self.agent.parameters())

    def train_step(self, step: int, llm: Any) -> None:
        hits, cells, text, out = play(self.agent, 1_000 * self.seed + step)
        out.backward(text, score=hits / cells)

    def evaluate(self, llm: Any) -> Score:
        rate = sum(h / c for h, c, _, _ in (play(self.agent, b) for b in self.eval_boards))
        rate /= len(self.eval_boards)
        return Score(rate, rate >= SUCCESS, {"ship_cells_hit": rate})

    def oracle(self, request: dict) -> Any:
        """The tutorial's script: stop repeating a shot, fix the crash, then hunt after hits."""
        if is_student(request):
            return "This task has no student model."
        values = current_values(request)

        def holding(method: str) -> str | None:
            """The name of the variable that holds ``def method(...)``, if any."""
            return next((n for n, v in values.items() if f"def {method}(" in str(v)), None)

        reason, act = holding("reason"), holding("act")
        if reason is None or act is None:
            return NO_VALUES
        feedback = feedback_of(request)
        if "Error" in feedback:
            return reply("reason() must list the cells not fired at yet.", {reason: REASON_CELLS})
        if "already fired" in feedback:
            return reply("act() must pick a cell not fired at yet.", {act: ACT_SCAN})
        if (
            "misses" in feedback
            and "neighbours" not in str(values[act])
            and "cell in unknown" not in str(values[act])
        ):
            return reply(
                "After a hit fire at its neighbours; else hunt on a checkerboard.",
                {act: ACT_HUNT},
            )
        return reply("The strategy already follows the feedback.", {})


def make(seed: int) -> BattleshipTask:
    return BattleshipTask(seed)
