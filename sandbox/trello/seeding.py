"""Build the emulator's starting state from the seed: members, the workspace, boards, lists, labels, cards.

Everything gets its id from one deterministic generator at fixed seed times, so every start has the same ids,
and every seeded card already has its ``createCard`` action, as a real board's history would.
"""

from __future__ import annotations

from sandbox.seed import SERVICE_ACCOUNT, Seed, token_for
from sandbox.trello.cards import CardEditor
from sandbox.trello.customfields import add_field, seed_value
from sandbox.trello.model import Board, Card, Member, Organization
from sandbox.trello.state import TrelloState


def populate(state: TrelloState, editor: CardEditor, seed: Seed) -> None:
    """Fill an empty state with the seed's Trello organisation."""
    state.seeding = True
    try:
        for person in seed.people:
            member = Member(
                id=state.ids.new(state.now()),
                username=person.username,
                full_name=person.name,
                email=person.email,
                token=token_for("trello", person.email),
            )
            state.members[member.id] = member
        bot = state.member_by_email(SERVICE_ACCOUNT)
        state.organization = Organization(
            id=state.ids.new(state.now()),
            name=seed.organisation.lower().replace(" ", ""),
            display_name=seed.organisation,
        )
        seeded: list[tuple[Board, list[Card]]] = []
        for spec in seed.trello.boards:
            emails = [SERVICE_ACCOUNT, *(email for email in spec.members if email != SERVICE_ACCOUNT)]
            moment = state.now()
            board = Board(
                id=state.ids.new(moment),
                name=spec.name,
                desc="",
                id_organization=state.organization.id,
                id_member_creator=bot.id,
                members=[state.member_by_email(email).id for email in emails],
                date_last_activity=moment,
            )
            state.boards[board.id] = board
            lists = {name: state.create_list(board, name, None, bot) for name in spec.lists}
            labels = {label.name: state.create_label(board, label.name, label.color) for label in spec.labels}
            cards: list[Card] = []
            seeded.append((board, cards))
            for card in spec.cards:
                creator = state.member_by_email(card.members[0]) if card.members else bot
                made = editor.create_card(
                    lists[card.list],
                    creator,
                    name=card.name,
                    desc=card.desc,
                    due=card.due,
                    due_complete=card.dueComplete,
                    id_members=[state.member_by_email(email).id for email in card.members],
                    id_labels=[labels[name].id for name in card.labels],
                )
                cards.append(made)
        # Custom fields come after everything else, so the ids of the other seeded objects stay what they were.
        for spec, (board, cards) in zip(seed.trello.boards, seeded, strict=True):
            fields = {
                f.name: add_field(state, board, f.name, f.type, [(o.text, o.color) for o in f.options])
                for f in spec.customFields
            }
            for card_spec, made in zip(spec.cards, cards, strict=True):
                for name, value in card_spec.customFields.items():
                    seed_value(state, made, fields[name], value)
    finally:
        state.seeding = False
