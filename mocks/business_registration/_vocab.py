"""Word lists of the enterprise generator: VSIC 2018 lines, sectors, name parts, legal forms.

The VSIC codes and names are the real ones (Decision 27/2018/QĐ-TTg, level 4); the
distinctive name parts are common auspicious words of Vietnamese trade names, combined at
random, so no generated name is meant to be a real company's.
"""

from __future__ import annotations

#: A curated subset of VSIC 2018 level-4 codes with their official Vietnamese names.
VSIC: dict[str, str] = {
    "0111": "Trồng lúa",
    "0150": "Trồng trọt, chăn nuôi hỗn hợp",
    "0322": "Nuôi trồng thủy sản nội địa",
    "1010": "Chế biến, bảo quản thịt và các sản phẩm từ thịt",
    "1020": "Chế biến, bảo quản thủy sản và các sản phẩm từ thủy sản",
    "1079": "Sản xuất thực phẩm khác chưa được phân vào đâu",
    "1410": "May trang phục (trừ trang phục từ da lông thú)",
    "1520": "Sản xuất giày, dép",
    "1622": "Sản xuất đồ gỗ xây dựng",
    "2220": "Sản xuất sản phẩm từ plastic",
    "2395": "Sản xuất bê tông và các sản phẩm từ bê tông, xi măng và thạch cao",
    "2511": "Sản xuất các cấu kiện kim loại",
    "3100": "Sản xuất giường, tủ, bàn, ghế",
    "4101": "Xây dựng nhà để ở",
    "4102": "Xây dựng nhà không để ở",
    "4212": "Xây dựng công trình đường bộ",
    "4321": "Lắp đặt hệ thống điện",
    "4322": "Lắp đặt hệ thống cấp, thoát nước, hệ thống sưởi và điều hoà không khí",
    "4330": "Hoàn thiện công trình xây dựng",
    "4511": "Bán buôn ô tô và xe có động cơ khác",
    "4520": "Bảo dưỡng, sửa chữa ô tô và xe có động cơ khác",
    "4541": "Bán mô tô, xe máy",
    "4610": "Đại lý, môi giới, đấu giá hàng hóa",
    "4620": "Bán buôn nông, lâm sản nguyên liệu (trừ gỗ, tre, nứa) và động vật sống",
    "4632": "Bán buôn thực phẩm",
    "4633": "Bán buôn đồ uống",
    "4641": "Bán buôn vải, hàng may mặc, giày dép",
    "4649": "Bán buôn đồ dùng khác cho gia đình",
    "4651": "Bán buôn máy vi tính, thiết bị ngoại vi và phần mềm",
    "4652": "Bán buôn thiết bị và linh kiện điện tử, viễn thông",
    "4659": "Bán buôn máy móc, thiết bị và phụ tùng máy khác",
    "4661": "Bán buôn nhiên liệu rắn, lỏng, khí và các sản phẩm liên quan",
    "4663": "Bán buôn vật liệu, thiết bị lắp đặt khác trong xây dựng",
    "4669": "Bán buôn chuyên doanh khác chưa được phân vào đâu",
    "4722": "Bán lẻ thực phẩm trong các cửa hàng chuyên doanh",
    "4772": "Bán lẻ thuốc, dụng cụ y tế, mỹ phẩm và vật phẩm vệ sinh trong các cửa hàng "
    "chuyên doanh",
    "4932": "Vận tải hành khách đường bộ khác",
    "4933": "Vận tải hàng hóa bằng đường bộ",
    "5210": "Kho bãi và lưu giữ hàng hóa",
    "5229": "Hoạt động dịch vụ hỗ trợ khác liên quan đến vận tải",
    "5510": "Dịch vụ lưu trú ngắn ngày",
    "5610": "Nhà hàng và các dịch vụ ăn uống phục vụ lưu động",
    "5630": "Dịch vụ phục vụ đồ uống",
    "6201": "Lập trình máy vi tính",
    "6202": "Tư vấn máy vi tính và quản trị hệ thống máy vi tính",
    "6209": "Hoạt động dịch vụ công nghệ thông tin và dịch vụ khác liên quan đến máy vi tính",
    "6311": "Xử lý dữ liệu, cho thuê và các hoạt động liên quan",
    "6810": "Kinh doanh bất động sản, quyền sử dụng đất thuộc chủ sở hữu, chủ sử dụng hoặc đi thuê",
    "6820": "Tư vấn, môi giới, đấu giá bất động sản, đấu giá quyền sử dụng đất",
    "6920": "Hoạt động liên quan đến kế toán, kiểm toán và tư vấn về thuế",
    "7020": "Hoạt động tư vấn quản lý",
    "7110": "Hoạt động kiến trúc và tư vấn kỹ thuật có liên quan",
    "7310": "Quảng cáo",
    "7911": "Đại lý du lịch",
    "7912": "Điều hành tua du lịch",
    "8299": "Hoạt động dịch vụ hỗ trợ kinh doanh khác còn lại chưa được phân vào đâu",
    "8559": "Giáo dục khác chưa được phân vào đâu",
    "8620": "Hoạt động của các phòng khám đa khoa, chuyên khoa và nha khoa",
}

#: Sectors: (weight, name words as (Vietnamese, English) variants, VSIC codes with the
#: usual main line first).
SECTORS: tuple[tuple[int, tuple[tuple[str, str], ...], tuple[str, ...]], ...] = (
    (
        22,
        (
            ("THƯƠNG MẠI", "TRADING"),
            ("THƯƠNG MẠI VÀ DỊCH VỤ", "TRADING AND SERVICES"),
            ("THƯƠNG MẠI DỊCH VỤ XUẤT NHẬP KHẨU", "TRADING SERVICE IMPORT EXPORT"),
        ),
        ("4669", "4610", "4632", "4633", "4641", "4649", "4659", "4663", "8299"),
    ),
    (
        16,
        (
            ("XÂY DỰNG", "CONSTRUCTION"),
            ("ĐẦU TƯ XÂY DỰNG", "CONSTRUCTION INVESTMENT"),
            ("XÂY DỰNG VÀ THƯƠNG MẠI", "CONSTRUCTION AND TRADING"),
        ),
        ("4102", "4101", "4212", "4321", "4322", "4330", "4663", "7110"),
    ),
    (
        9,
        (("CÔNG NGHỆ", "TECHNOLOGY"), ("GIẢI PHÁP PHẦN MỀM", "SOFTWARE SOLUTIONS")),
        ("6201", "6202", "6209", "6311", "4651", "4652"),
    ),
    (
        8,
        (("VẬN TẢI", "TRANSPORT"), ("LOGISTICS", "LOGISTICS")),
        ("4933", "4932", "5210", "5229"),
    ),
    (
        7,
        (("THỰC PHẨM", "FOOD"), ("CHẾ BIẾN THỰC PHẨM", "FOOD PROCESSING")),
        ("1079", "1010", "1020", "4632", "4722"),
    ),
    (
        6,
        (("DU LỊCH", "TRAVEL"), ("DU LỊCH VÀ KHÁCH SẠN", "TRAVEL AND HOTEL")),
        ("7912", "7911", "5510", "5610", "5630"),
    ),
    (
        6,
        (("ĐẦU TƯ BẤT ĐỘNG SẢN", "REAL ESTATE INVESTMENT"), ("ĐỊA ỐC", "REAL ESTATE")),
        ("6810", "6820", "4101"),
    ),
    (
        6,
        (("TƯ VẤN", "CONSULTING"), ("TƯ VẤN VÀ KẾ TOÁN", "CONSULTING AND ACCOUNTING")),
        ("7020", "6920", "7110", "7310"),
    ),
    (
        8,
        (("SẢN XUẤT", "MANUFACTURING"), ("SẢN XUẤT VÀ THƯƠNG MẠI", "MANUFACTURING AND TRADING")),
        ("2220", "1410", "1520", "1622", "2395", "2511", "3100"),
    ),
    (
        4,
        (("NÔNG NGHIỆP", "AGRICULTURE"), ("NÔNG SẢN", "AGRICULTURAL PRODUCTS")),
        ("0150", "0111", "0322", "4620"),
    ),
    (
        3,
        (("DƯỢC PHẨM", "PHARMACEUTICAL"), ("THIẾT BỊ Y TẾ", "MEDICAL EQUIPMENT")),
        ("4772", "8620"),
    ),
    (2, (("GIÁO DỤC", "EDUCATION"),), ("8559",)),
    (3, (("Ô TÔ", "AUTOMOBILE"),), ("4511", "4520", "4541")),
    (2, (("XĂNG DẦU", "PETROLEUM"),), ("4661", "5210")),
)

#: Two of these make the distinctive part of a name ("HOÀNG PHÁT", "MINH AN").
NAME_FIRST: tuple[str, ...] = (
    "AN", "BẢO", "ĐẠI", "ĐỨC", "GIA", "HẢI", "HOÀNG", "HÒA", "HƯNG", "KIM", "LONG", "MINH",
    "NAM", "NGỌC", "PHÚ", "PHƯƠNG", "QUANG", "SAO", "TÂN", "THÀNH", "THIÊN", "THỊNH",
    "TRƯỜNG", "VẠN", "VIỆT", "HỒNG", "ĐÔNG", "TRÍ", "TOÀN", "NHẬT",
)  # fmt: skip
NAME_SECOND: tuple[str, ...] = (
    "AN", "PHÁT", "THỊNH", "LỢI", "HƯNG", "PHÚC", "KHANG", "LONG", "VIỆT", "MINH", "TÍN",
    "THÀNH", "DƯƠNG", "NGUYÊN", "PHONG", "TÀI", "LỘC", "QUANG", "HÀ", "SƠN", "HẢI", "ĐẠT",
    "TIẾN", "VƯỢNG", "BÌNH", "KHÔI", "HUY", "PHƯƠNG", "TRUNG", "NAM",
)  # fmt: skip

#: Legal forms: key, weight, name prefix, English suffix, short-name suffix.
LEGAL_FORMS: tuple[tuple[str, int, str, str | None, str | None], ...] = (
    ("llc", 46, "CÔNG TY TNHH", "COMPANY LIMITED", "CO., LTD"),
    ("llc1", 20, "CÔNG TY TNHH MỘT THÀNH VIÊN", "ONE MEMBER COMPANY LIMITED", "CO., LTD"),
    ("jsc", 24, "CÔNG TY CỔ PHẦN", "JOINT STOCK COMPANY", "JSC"),
    ("private", 9, "DOANH NGHIỆP TƯ NHÂN", None, None),
    ("partnership", 1, "CÔNG TY HỢP DANH", "PARTNERSHIP", None),
)
BRANCH_PREFIX = "CHI NHÁNH"

#: Titles of the legal representatives by legal form (first: the usual single one).
POSITIONS: dict[str, tuple[str, ...]] = {
    "llc": ("Giám đốc", "Chủ tịch Hội đồng thành viên"),
    "llc1": ("Giám đốc", "Chủ tịch công ty"),
    "jsc": ("Tổng giám đốc", "Chủ tịch Hội đồng quản trị"),
    "private": ("Chủ doanh nghiệp",),
    "partnership": ("Thành viên hợp danh", "Thành viên hợp danh"),
}

#: Typical charter capitals (VND) by legal form; private enterprises have none.
CAPITALS: dict[str, tuple[int, ...]] = {
    "llc": (
        100_000_000, 500_000_000, 1_000_000_000, 1_500_000_000, 2_000_000_000, 3_000_000_000,
        5_000_000_000, 9_900_000_000, 10_000_000_000, 20_000_000_000, 50_000_000_000,
    ),
    "llc1": (
        100_000_000, 200_000_000, 500_000_000, 800_000_000, 1_000_000_000, 2_000_000_000,
        5_000_000_000, 10_000_000_000, 30_000_000_000,
    ),
    "jsc": (
        1_000_000_000, 3_000_000_000, 5_000_000_000, 10_000_000_000, 15_000_000_000,
        30_000_000_000, 50_000_000_000, 100_000_000_000, 250_000_000_000, 500_000_000_000,
        1_200_000_000_000,
    ),
    "partnership": (500_000_000, 1_000_000_000, 2_000_000_000, 5_000_000_000),
}  # fmt: skip

#: Status mix of head offices (most are operating).
STATUSES: tuple[tuple[str, int], ...] = (
    ("active", 76),
    ("suspended", 8),
    ("dissolving", 3),
    ("dissolved", 9),
    ("bankrupt", 1),
    ("revoked", 3),
)

#: The two leading digits of enterprise codes issued by the tax departments of the five
#: centrally-run cities; other provinces get synthetic prefixes (see data.py).
CITY_CODE_PREFIX: dict[str, str] = {"001": "01", "031": "02", "079": "03", "048": "04", "092": "18"}

#: Where enterprises not in their representative's home province register (weights).
BUSINESS_CENTRES: tuple[tuple[str, int], ...] = (
    ("079", 30),
    ("001", 26),
    ("048", 6),
    ("031", 6),
    ("074", 6),
    ("075", 5),
    ("092", 4),
    ("022", 3),
    ("027", 3),
    ("056", 2),
)
