"""Spending categories by merchant category code, and the MCC groups a company may block.

The groups are loaded into the engine as `mccgroups` under the tokens below, so a block
is an auth control whose merchant scope names one of them.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    token: str
    name: str
    mccs: tuple[str, ...]

    def contains(self, mcc: str) -> bool:
        if not (mcc.isascii() and mcc.isdigit()):
            return False
        code = int(mcc)
        for entry in self.mccs:
            low, _, high = entry.partition("-")
            if int(low) <= code <= int(high or low):
                return True
        return False


CATEGORIES = (
    Category(
        "portal-travel",
        "Travel",
        ("3000-3999", "4111-4131", "4411", "4511-4582", "4722", "7011-7012", "7512-7519"),
    ),
    Category("portal-dining", "Restaurants and bars", ("5811-5814",)),
    Category("portal-groceries", "Groceries", ("5411-5499",)),
    Category("portal-fuel", "Fuel", ("5541-5542", "5983")),
    Category("portal-cash", "Cash and quasi-cash", ("4829", "6010-6012", "6050-6051", "6540")),
    Category("portal-gambling", "Gambling", ("7800-7802", "7995")),
    Category(
        "portal-software", "Software and online services", ("4816", "5734", "5817-5818", "7372")
    ),
    Category("portal-retail", "Shops", ("5200-5399", "5600-5699", "5900-5999")),
    Category("portal-transport", "Local transport", ("4121", "4784", "7523")),
)
BY_TOKEN = {category.token: category for category in CATEGORIES}
OTHER = "Other"


def category_name(mcc: str | None) -> str:
    """The first category whose codes include `mcc`."""
    if not mcc:
        return OTHER
    for category in CATEGORIES:
        if category.contains(mcc):
            return category.name
    return OTHER


def mcc_groups_document() -> list[dict[str, object]]:
    """Every category as the engine's `mccgroups` entries."""
    return [
        {"token": category.token, "name": category.name, "mccs": list(category.mccs)}
        for category in CATEGORIES
    ]


# Alpha-3 codes a company may block; the processor sends alpha-3 in real traffic.
COUNTRY_CODE_LENGTH = 3


def country_problem(code: str) -> str | None:
    if len(code) != COUNTRY_CODE_LENGTH or not code.isalpha() or not code.isascii():
        return "Use a three-letter country code such as USA or GBR."
    return None
