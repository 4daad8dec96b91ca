"""Word lists the synthetic population is drawn from.

Everything here is a tuple (never a set or a dict iterated for choice) so that drawing from
it with a seeded `random.Random` gives the same citizens on every machine and Python run.
Weights are rough shares, not census figures: they only need to look plausible.
"""

from __future__ import annotations

# Family names with rough population shares (per mille). Huỳnh and Võ are the southern
# spellings of Hoàng and Vũ; the generator favours them in the south.
FAMILY_NAMES: tuple[tuple[str, int], ...] = (
    ("Nguyễn", 380),
    ("Trần", 110),
    ("Lê", 95),
    ("Phạm", 70),
    ("Hoàng", 32),
    ("Huỳnh", 20),
    ("Phan", 45),
    ("Vũ", 22),
    ("Võ", 17),
    ("Đặng", 21),
    ("Bùi", 20),
    ("Đỗ", 14),
    ("Hồ", 13),
    ("Ngô", 13),
    ("Dương", 10),
    ("Lý", 5),
    ("Đinh", 6),
    ("Trương", 6),
    ("Lâm", 4),
    ("Mai", 4),
    ("Lương", 4),
    ("Trịnh", 4),
    ("Đào", 4),
    ("Cao", 3),
    ("Hà", 3),
    ("Tạ", 2),
    ("Kiều", 1),
    ("Quách", 1),
    ("Lưu", 2),
    ("Châu", 2),
    ("Tô", 2),
    ("Thái", 1),
)

SOUTHERN_SPELLINGS: tuple[tuple[str, str], ...] = (("Hoàng", "Huỳnh"), ("Vũ", "Võ"))

# Middle names: older generations mostly Văn / Thị, younger ones more varied.
MIDDLE_MALE_TRADITIONAL: tuple[tuple[str, int], ...] = (
    ("Văn", 70),
    ("Đức", 8),
    ("Hữu", 7),
    ("Đình", 5),
    ("Công", 4),
    ("Quang", 3),
    ("Xuân", 3),
)
MIDDLE_MALE_MODERN: tuple[tuple[str, int], ...] = (
    ("Văn", 18),
    ("Minh", 16),
    ("Đức", 10),
    ("Quang", 8),
    ("Hữu", 5),
    ("Gia", 8),
    ("Anh", 6),
    ("Bảo", 6),
    ("Trọng", 4),
    ("Tuấn", 4),
    ("Duy", 5),
    ("Quốc", 5),
    ("Thành", 4),
    ("Hoàng", 4),
    ("Ngọc", 2),
    ("Mạnh", 3),
)
MIDDLE_FEMALE_TRADITIONAL: tuple[tuple[str, int], ...] = (
    ("Thị", 80),
    ("Ngọc", 5),
    ("Thu", 4),
    ("Thanh", 4),
    ("Kim", 4),
    ("Hồng", 3),
)
MIDDLE_FEMALE_MODERN: tuple[tuple[str, int], ...] = (
    ("Thị", 22),
    ("Ngọc", 12),
    ("Thu", 7),
    ("Thanh", 7),
    ("Minh", 6),
    ("Phương", 6),
    ("Thùy", 6),
    ("Bảo", 5),
    ("Khánh", 5),
    ("Hoài", 4),
    ("Mỹ", 4),
    ("Diệu", 3),
    ("Quỳnh", 3),
    ("Bích", 3),
    ("Như", 3),
    ("Hồng", 3),
)

GIVEN_MALE: tuple[str, ...] = (
    "Anh", "Bảo", "Bình", "Cường", "Chiến", "Dũng", "Duy", "Đạt", "Đông", "Đức", "Hải",
    "Hậu", "Hiếu", "Hoàng", "Hùng", "Huy", "Hưng", "Khang", "Khánh", "Khoa", "Khôi", "Kiên",
    "Lâm", "Long", "Lộc", "Lợi", "Mạnh", "Minh", "Nam", "Nghĩa", "Nhân", "Phong", "Phúc",
    "Quang", "Quân", "Sơn", "Tài", "Thắng", "Thành", "Thịnh", "Tiến", "Toàn", "Trí", "Trung",
    "Tú", "Tuấn", "Tùng", "Việt", "Vinh", "Vũ",
)  # fmt: skip
GIVEN_FEMALE: tuple[str, ...] = (
    "An", "Anh", "Bích", "Chi", "Diệp", "Dung", "Duyên", "Giang", "Hà", "Hạnh", "Hằng",
    "Hiền", "Hoa", "Hồng", "Huệ", "Hương", "Huyền", "Lan", "Liên", "Linh", "Loan", "Lụa",
    "Mai", "My", "Nga", "Ngân", "Ngọc", "Nhi", "Nhung", "Oanh", "Phương", "Quỳnh", "Tâm",
    "Thảo", "Thơ", "Thư", "Thủy", "Trang", "Trâm", "Tuyết", "Uyên", "Vân", "Vy", "Xuân",
    "Yến",
)  # fmt: skip

STREETS: tuple[str, ...] = (
    "Huế", "Lê Lợi", "Trần Hưng Đạo", "Nguyễn Trãi", "Hai Bà Trưng", "Lý Thường Kiệt",
    "Quang Trung", "Hùng Vương", "Điện Biên Phủ", "Nguyễn Huệ", "Lê Duẩn", "Trần Phú",
    "Phan Chu Trinh", "Nguyễn Du", "Bà Triệu", "Hoàng Diệu", "Lạc Long Quân", "Võ Thị Sáu",
    "Nguyễn Văn Cừ", "Cách Mạng Tháng Tám", "Phạm Ngũ Lão", "Lê Thánh Tông", "Ngô Quyền",
    "Đinh Tiên Hoàng", "Kim Mã", "Giải Phóng", "Tôn Đức Thắng", "Nguyễn Thị Minh Khai",
    "Ba Tháng Hai", "Phan Đình Phùng", "Lê Hồng Phong", "Trường Chinh",
)  # fmt: skip

HAMLETS: tuple[str, ...] = (
    "Đông", "Tây", "Nam", "Bắc", "Trung", "Thượng", "Hạ", "Đoài", "Chùa", "Đình", "Cầu",
    "Mới", "An Lạc", "Phú Mỹ", "Bình Minh", "Tân Lập", "Hòa Bình", "Thắng Lợi", "Đồng Tâm",
    "Quyết Tiến", "Tiền Phong", "Đại Đồng", "Phú Lộc", "Long Hòa",
)  # fmt: skip

PLACE_SYLLABLES: tuple[str, ...] = (
    "An", "Bình", "Hòa", "Phú", "Tân", "Long", "Thạnh", "Hưng", "Thịnh", "Phước", "Lộc",
    "Mỹ", "Xuân", "Đông", "Tây", "Nghĩa", "Thuận", "Hiệp", "Quang", "Minh", "Trung",
    "Thành", "Vĩnh", "Khánh", "Đức", "Lợi", "Hải", "Sơn", "Yên", "Lạc", "Cát", "Kim",
)  # fmt: skip

# Ethnicity codes of the national list (01 Kinh, 02 Tày, 03 Thái, 04 Hoa, 05 Khơ-me,
# 06 Mường, 07 Nùng, 08 HMông, 09 Dao, 10 Gia-rai, 12 Ê-đê).
ETHNICITIES_LOWLAND: tuple[tuple[str, int], ...] = (("01", 95), ("04", 2), ("06", 2), ("05", 1))
ETHNICITIES_NORTH_MOUNTAIN: tuple[tuple[str, int], ...] = (
    ("01", 45),
    ("02", 15),
    ("03", 12),
    ("07", 10),
    ("08", 10),
    ("09", 5),
    ("06", 3),
)
ETHNICITIES_HIGHLANDS: tuple[tuple[str, int], ...] = (("01", 75), ("10", 12), ("12", 13))
ETHNICITIES_MEKONG: tuple[tuple[str, int], ...] = (("01", 88), ("05", 9), ("04", 3))

# Religion codes (00 none, 01 Buddhism, 02 Catholicism, 03 Protestantism, 04 Cao Đài,
# 05 Hòa Hảo): synthetic but stable, like the real code list's leading entries.
RELIGIONS: tuple[tuple[str, int], ...] = (
    ("00", 82),
    ("01", 9),
    ("02", 6),
    ("03", 1),
    ("04", 1),
    ("05", 1),
)

BLOOD_GROUPS: tuple[tuple[str | None, int], ...] = (
    ("O", 32),
    ("B", 22),
    ("A", 16),
    ("AB", 4),
    (None, 26),
)

# Province groups (legacy codes) that shape names, addresses and ethnicity.
BIG_CITIES: tuple[str, ...] = ("001", "079", "031", "048", "092")
NORTH_MOUNTAIN: tuple[str, ...] = (
    "002", "004", "006", "008", "010", "011", "012", "014", "015", "017", "020",
)  # fmt: skip
HIGHLANDS: tuple[str, ...] = ("062", "064", "066", "067", "068")
MEKONG: tuple[str, ...] = ("080", "082", "083", "084", "086", "087", "089", "091", "093",
                           "094", "095", "096", "092")  # fmt: skip
# Where people move for work: the temporary-residence addresses of some young adults.
MIGRATION_TARGETS: tuple[tuple[str, int], ...] = (
    ("079", 40),
    ("001", 30),
    ("074", 12),
    ("048", 8),
    ("075", 10),
)
# Household share weights: big cities hold many more households than rural provinces.
PROVINCE_WEIGHT: tuple[tuple[str, int], ...] = (
    ("001", 9),
    ("079", 10),
    ("031", 3),
    ("048", 2),
    ("092", 2),
    ("074", 3),
    ("075", 3),
    ("038", 3),
    ("040", 3),
)
