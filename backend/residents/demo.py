"""A synthetic roster for the demo community 南桥社区 (上海市奉贤区南桥镇).

Everything here is invented: names are drawn from common surnames and given
names of the generation, ID numbers are random with a valid GB 11643 check
character, and phones use the DEMO_PHONE_PREFIX block. None of it identifies
a real person; it must never be loaded into a production database.

The age mix follows the shape of Shanghai's 80+ population: about four in five
are 80–89, most of the rest 90–99, a handful are centenarians, and women
outnumber men more strongly the older the band.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from backend.residents.national_id import age_on, synthetic_national_id
from backend.residents.roster import FIELD_LABELS

__all__ = ["DEMO_COMMUNITY", "DEMO_PHONE_PREFIX", "demo_roster"]

DEMO_COMMUNITY = {
    "code": "nanqiao",
    "name": "南桥社区",
    "street": "南桥镇",
    "district": "上海市奉贤区",
}

#: Synthetic phones are 1700 + 7 digits: a well-formed mainland mobile number
#: (170 is a virtual-operator block) chosen so demo data is easy to recognise.
#: An SMS adapter outside dev should refuse to send to this block.
DEMO_PHONE_PREFIX = "1700"

_ADDRESS_PREFIX = "上海市奉贤区南桥镇"
# Region codes: 310226 was 奉贤县 (IDs issued before 2001 keep it), 310120 is 奉贤区.
_REGIONS = ("310226",) * 7 + ("310120",) * 3

_SURNAMES = (
    ("张", 9),
    ("王", 8),
    ("李", 6),
    ("陈", 8),
    ("徐", 6),
    ("朱", 6),
    ("沈", 6),
    ("周", 5),
    ("陆", 6),
    ("顾", 5),
    ("吴", 5),
    ("黄", 4),
    ("钱", 3),
    ("孙", 3),
    ("金", 3),
    ("杨", 4),
    ("蔡", 3),
    ("范", 2),
    ("卫", 2),
    ("姚", 3),
    ("胡", 3),
    ("施", 3),
    ("俞", 2),
    ("倪", 2),
    ("邱", 2),
    ("潘", 2),
    ("曹", 2),
    ("唐", 2),
    ("秦", 1),
    ("庄", 2),
    ("褚", 1),
    ("欧阳", 1),
)
_FEMALE = (
    "桂英",
    "秀兰",
    "秀英",
    "玉兰",
    "桂兰",
    "凤英",
    "秀珍",
    "玉珍",
    "美英",
    "月英",
    "素珍",
    "佩华",
    "雅琴",
    "菊英",
    "金娣",
    "彩娣",
    "招娣",
    "巧珍",
    "慧芳",
    "淑贞",
    "丽华",
    "文英",
    "宝珍",
    "兰英",
    "梅芳",
    "惠珍",
    "杏娣",
    "引娣",
    "根娣",
    "秀琴",
    "凤珍",
    "翠英",
    "银娣",
    "淑英",
    "美华",
    "瑞英",
    "英",
    "珍",
    "芳",
    "兰",
)
_MALE = (
    "建国",
    "德明",
    "国华",
    "永福",
    "福根",
    "金根",
    "志明",
    "振华",
    "荣发",
    "文彬",
    "家骏",
    "宝林",
    "仁杰",
    "信芳",
    "锦荣",
    "士杰",
    "伯康",
    "炳生",
    "金宝",
    "阿根",
    "根宝",
    "荣生",
    "德华",
    "耀祖",
    "关林",
    "雪根",
    "林生",
    "福生",
    "永康",
    "正兴",
    "志强",
    "顺德",
    "惠民",
    "鸿章",
    "桂生",
    "水根",
    "明",
    "华",
    "强",
    "忠",
)
_ROADS = (
    "解放东路",
    "解放中路",
    "解放西路",
    "南桥路",
    "江海路",
    "环城东路",
    "环城西路",
    "百齐路",
    "育秀路",
    "运河北路",
    "立新路",
    "正浦路",
    "古华路",
    "德丰路",
    "南亭公路",
    "人民中路",
    "菜场路",
    "新建中路",
    "航南公路",
    "沪杭公路",
)
_CARE_HOMES = ("南桥镇敬老院", "奉贤区社会福利院", "南桥镇长者照护之家")

# (band lowest age, band highest age, share of the roster, share of women)
_BANDS = ((80, 89, 0.80, 0.56), (90, 99, 0.185, 0.66), (100, 103, 0.015, 0.80))
_PHONE_SHARE = 0.85
_ELSEWHERE_SHARE = 0.08


def _band_counts(n: int) -> list[int]:
    """Residents per band; at least one centenarian once the roster has 50 people."""
    oldest = max(1, round(n * _BANDS[2][2])) if n >= 50 else round(n * _BANDS[2][2])
    middle = round(n * _BANDS[1][2])
    return [n - middle - oldest, middle, oldest]


def _age(rng: random.Random, low: int, high: int) -> int:
    """An age in [low, high], each year about 15% rarer than the one before (mortality)."""
    ages = list(range(low, high + 1))
    return rng.choices(ages, weights=[0.85 ** (a - low) for a in ages])[0]


def _birth_date(rng: random.Random, age: int, as_of: date) -> date:
    """A uniformly random birth date on which the person is exactly `age` on `as_of`."""
    latest = _shift_years(as_of, -age)
    earliest = _shift_years(as_of, -(age + 1)) + timedelta(days=1)
    born = earliest + timedelta(days=rng.randrange((latest - earliest).days + 1))
    assert age_on(born, as_of) == age
    return born


def _shift_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February into a common year
        return day.replace(year=day.year + years, day=28)


def _address(rng: random.Random) -> str:
    """'上海市奉贤区南桥镇江海路128弄3号402室': 6-storey walk-ups, elders mostly on low floors."""
    road = rng.choice(_ROADS)
    floor = rng.choices(range(1, 7), weights=(30, 25, 18, 12, 9, 6))[0]
    room = f"{floor}0{rng.randint(1, 4)}室"
    if rng.random() < 0.8:
        return f"{_ADDRESS_PREFIX}{road}{rng.randint(1, 60) * 2 + 8}弄{rng.randint(1, 48)}号{room}"
    return f"{_ADDRESS_PREFIX}{road}{rng.randint(1, 400)}号{room}"


def demo_roster(n: int = 300, *, seed: int = 20261101, as_of: date) -> list[dict[str, str]]:
    """`n` synthetic residents, deterministic for (`n`, `seed`, `as_of`), keyed by the roster's Chinese header.

    Every row passes `parse_roster(..., as_of=as_of)`: ages 80–103 on `as_of`,
    unique checksum-valid IDs, unique phones where present.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = random.Random(seed)
    ids: set[str] = set()
    phones: set[str] = set()
    rows: list[dict[str, str]] = []
    for (low, high, _share, women), count in zip(_BANDS, _band_counts(n), strict=True):
        for _ in range(count):
            sex = "F" if rng.random() < women else "M"
            born = _birth_date(rng, _age(rng, low, high), as_of)
            region = rng.choice(_REGIONS)
            number = synthetic_national_id(rng, birth_date=born, sex=sex, region_code=region)
            while number in ids:
                number = synthetic_national_id(rng, birth_date=born, sex=sex, region_code=region)
            ids.add(number)
            surname = rng.choices([s for s, _ in _SURNAMES], weights=[w for _, w in _SURNAMES])[0]
            given = rng.choice(_FEMALE if sex == "F" else _MALE)
            phone = ""
            if rng.random() < _PHONE_SHARE:
                phone = f"{DEMO_PHONE_PREFIX}{rng.randrange(10**7):07d}"
                while phone in phones:
                    phone = f"{DEMO_PHONE_PREFIX}{rng.randrange(10**7):07d}"
                phones.add(phone)
            address = _address(rng)
            living = ""
            if rng.random() < _ELSEWHERE_SHARE:
                # Lives with a child elsewhere in town, or in a care home.
                living = (
                    f"{_ADDRESS_PREFIX}{rng.choice(_CARE_HOMES)}" if rng.random() < 0.4 else _address(rng)
                )
            rows.append(
                {
                    FIELD_LABELS["name"]: surname + given,
                    FIELD_LABELS["national_id"]: number,
                    FIELD_LABELS["phone"]: phone,
                    FIELD_LABELS["address"]: address,
                    FIELD_LABELS["living_address"]: living,
                }
            )
    rng.shuffle(rows)  # a real roster is not sorted by age
    return rows
