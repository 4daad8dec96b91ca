"""SOAP 1.1 wire format of the population mock: request parsing and response rendering.

Responses are assembled from escaped string templates rather than an XML tree: the mock is
the benchmark's "direct" baseline, and each citizen's `<r:CongDan>` fragment is rendered
once and reused. Requests are parsed with a hardened lxml parser (no entity expansion, no
network, no huge trees) and any document type declaration is refused outright, as SOAP 1.1
forbids them.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass

from lxml import etree

from mocks.data import Address, Citizen, PersonRef

SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
REQUEST_NS = "http://dancuquocgia.bca"
RESPONSE_NS = "http://www.mic.gov.vn/dancu/1.0"
SOAP_ACTION_PREFIX = f"{REQUEST_NS}/"
LOOKUP = "TraCuuThongTinCongDan"
VERIFY = "XacThucThongTinCongDan"
OPERATIONS = (LOOKUP, VERIFY)
CONTENT_TYPE = "text/xml; charset=utf-8"

GENDER_CODES = {"male": "1", "female": "2"}
MARITAL_CODES = {"single": "1", "married": "2", "divorced": "3", "widowed": "4"}
BLOOD_CODES = {"O": "1", "A": "2", "B": "3", "AB": "4"}

_XML_DECL = b'<?xml version="1.0" encoding="utf-8"?>\n'
_ENVELOPE_OPEN = (
    _XML_DECL
    + f'<soap:Envelope xmlns:soap="{SOAP_ENV_NS}" xmlns:r="{RESPONSE_NS}"><soap:Body>'.encode()
)
_ENVELOPE_CLOSE = b"</soap:Body></soap:Envelope>"
_REQUEST_PREFIX = "{" + REQUEST_NS + "}"
_ENVELOPE_TAG = "{" + SOAP_ENV_NS + "}Envelope"
_BODY_TAG = "{" + SOAP_ENV_NS + "}Body"

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    huge_tree=False,
    load_dtd=False,
    dtd_validation=False,
    remove_comments=True,
    remove_pis=True,
    collect_ids=False,
)


@dataclass(frozen=True, slots=True)
class SoapFault:
    """A fault to answer with: `code` is the MaLoi, `message` the Vietnamese faultstring."""

    code: str
    message: str
    fault_code: str = "soap:Client"
    status: int = 500


class SoapFaultError(Exception):
    """Raised while handling a request; the app answers with `fault`."""

    def __init__(self, fault: SoapFault) -> None:
        super().__init__(fault.code)
        self.fault = fault


def invalid(reason: str) -> SoapFaultError:
    """YEU_CAU_KHONG_HOP_LE with a reason that never quotes the caller's data."""
    return SoapFaultError(SoapFault("YEU_CAU_KHONG_HOP_LE", f"Yêu cầu không hợp lệ: {reason}"))


AUTH_FAILED = SoapFault("XAC_THUC_THAT_BAI", "Xác thực không thành công", status=401)
SYSTEM_ERROR = SoapFault(
    "LOI_HE_THONG", "Lỗi hệ thống, vui lòng thử lại sau", fault_code="soap:Server"
)
SERVER_FAULT = SoapFault(
    "LOI_HE_THONG", "Máy chủ CSDL dân cư không xử lý được yêu cầu", fault_code="soap:Server"
)


def not_found(personal_id: str) -> SoapFaultError:
    # Quoting the ID is deliberate: real upstream text does, and the hub must not pass it on.
    message = f"Không tìm thấy công dân có số định danh {personal_id}"
    return SoapFaultError(SoapFault("KHONG_TIM_THAY", message))


def esc(text: str) -> str:
    """Escape text content (quotes need no escaping outside attributes)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_fault(fault: SoapFault) -> bytes:
    """A SOAP 1.1 fault envelope with the `r:Loi` detail."""
    message = esc(fault.message)
    return (
        _XML_DECL
        + (
            f'<soap:Envelope xmlns:soap="{SOAP_ENV_NS}"><soap:Body><soap:Fault>'
            f"<faultcode>{fault.fault_code}</faultcode><faultstring>{message}</faultstring>"
            f'<detail><r:Loi xmlns:r="{RESPONSE_NS}"><r:MaLoi>{fault.code}</r:MaLoi>'
            f"<r:MoTa>{message}</r:MoTa></r:Loi></detail>"
            "</soap:Fault></soap:Body></soap:Envelope>"
        ).encode()
    )


# -- responses --------------------------------------------------------------------------


def _address(tag: str, a: Address) -> str:
    return (
        f"<r:{tag}><r:MaTinhThanh>{a.province_code}</r:MaTinhThanh>"
        f"<r:MaQuanHuyen>{a.district_code}</r:MaQuanHuyen>"
        f"<r:MaPhuongXa>{a.ward_code}</r:MaPhuongXa>"
        f"<r:ChiTiet>{esc(a.detail)}</r:ChiTiet><r:QuocGia>{a.country}</r:QuocGia></r:{tag}>"
    )


def _person(tag: str, ref: PersonRef | None) -> str:
    if ref is None:
        return ""
    pid = f"<r:SoDinhDanh>{ref.personal_id}</r:SoDinhDanh>" if ref.personal_id else ""
    return f"<r:{tag}><r:HoVaTen>{esc(ref.full_name)}</r:HoVaTen>{pid}<r:QuocTich>VN</r:QuocTich></r:{tag}>"  # noqa: E501


def render_citizen(c: Citizen) -> bytes:
    """One `<r:CongDan>` element, in the WSDL's element order."""
    old_id = f"<r:SoCMND>{c.old_id_number}</r:SoCMND>" if c.old_id_number else ""
    head = c.household_head
    return (
        f"<r:CongDan><r:SoDinhDanh>{c.personal_id}</r:SoDinhDanh>{old_id}"
        f"<r:HoVaTen><r:Ho>{esc(c.family_name)}</r:Ho><r:ChuDem>{esc(c.middle_name)}</r:ChuDem>"
        f"<r:Ten>{esc(c.given_name)}</r:Ten></r:HoVaTen>"
        f"<r:GioiTinh>{GENDER_CODES[c.gender]}</r:GioiTinh>"
        f"<r:DanToc>{c.ethnicity_code}</r:DanToc><r:TonGiao>{c.religion_code}</r:TonGiao>"
        f"<r:QuocTich>{c.nationality}</r:QuocTich>"
        f"<r:TinhTrangHonNhan>{MARITAL_CODES[c.marital_status]}</r:TinhTrangHonNhan>"
        f"<r:NhomMau>{BLOOD_CODES.get(c.blood_group or '', '0')}</r:NhomMau>"
        f"<r:NgayThangNamSinh><r:NgayThangNam>{c.date_of_birth:%Y%m%d}</r:NgayThangNam>"
        f"<r:Nam>{c.date_of_birth.year:04d}</r:Nam></r:NgayThangNamSinh>"
        + _address("NoiDangKyKhaiSinh", c.birth_registration_place)
        + _address("QueQuan", c.hometown)
        + _address("ThuongTru", c.permanent_address)
        + _address("NoiOHienTai", c.current_address)
        + _person("Cha", c.father)
        + _person("Me", c.mother)
        + _person("VoChong", c.spouse)
        + f"<r:ChuHo><r:HoVaTen>{esc(head.full_name)}</r:HoVaTen>"
        f"<r:SoDinhDanh>{head.personal_id}</r:SoDinhDanh>"
        f"<r:QuanHe>{c.relation_to_head}</r:QuanHe></r:ChuHo>"
        f"<r:SoSoHoKhau>{esc(c.household_book_number)}</r:SoSoHoKhau></r:CongDan>"
    ).encode()


def render_lookup(request_id: str, citizen_fragment: bytes) -> bytes:
    """The TraCuuThongTinCongDanResponse envelope around one rendered citizen."""
    return b"".join(
        (
            _ENVELOPE_OPEN,
            b"<r:TraCuuThongTinCongDanResponse><r:MaYeuCau>",
            esc(request_id).encode(),
            b"</r:MaYeuCau><r:CongdanCollection>",
            citizen_fragment,
            b"</r:CongdanCollection></r:TraCuuThongTinCongDanResponse>",
            _ENVELOPE_CLOSE,
        )
    )


def _bool(value: bool) -> str:
    return "true" if value else "false"


def render_verify(
    request_id: str, exists: bool, name: bool, dob: bool, gender: bool | None
) -> bytes:
    """The XacThucThongTinCongDanResponse envelope; GioiTinh only when it was asked."""
    overall = exists and name and dob and gender is not False
    gender_xml = "" if gender is None else f"<r:GioiTinh>{_bool(gender)}</r:GioiTinh>"
    return (
        _ENVELOPE_OPEN
        + (
            f"<r:XacThucThongTinCongDanResponse><r:MaYeuCau>{esc(request_id)}</r:MaYeuCau>"
            f"<r:TonTai>{_bool(exists)}</r:TonTai>"
            f"<r:KetQuaXacThuc>{_bool(overall)}</r:KetQuaXacThuc>"
            f"<r:ChiTietXacThuc><r:HoVaTen>{_bool(name)}</r:HoVaTen>"
            f"<r:NgayThangNamSinh>{_bool(dob)}</r:NgayThangNamSinh>{gender_xml}"
            "</r:ChiTietXacThuc></r:XacThucThongTinCongDanResponse>"
        ).encode()
        + _ENVELOPE_CLOSE
    )


def normalise_name(name: str) -> str:
    """NFC, case-folded, single-spaced: diacritics stay significant."""
    folded = unicodedata.normalize("NFC", name).casefold()
    return " ".join(unicodedata.normalize("NFC", folded).split())


# -- requests ---------------------------------------------------------------------------

_REQUIRED = {
    LOOKUP: ("MaYeuCau", "MaDVC", "MaTichHop", "SoDinhDanh"),
    VERIFY: ("MaYeuCau", "MaDVC", "MaTichHop", "SoDinhDanh", "HoVaTen", "NgayThangNamSinh"),
}
_OPTIONAL = {LOOKUP: ("MaCanBo",), VERIFY: ("MaCanBo", "GioiTinh")}
_MAX_LENGTH = {"HoVaTen": 200}


def parse_request(body: bytes) -> tuple[str, dict[str, str]]:
    """The operation and its fields (stripped text by local name); raises SoapFaultError."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise invalid("không chấp nhận khai báo DTD hoặc thực thể (DOCTYPE/ENTITY)")
    try:
        root = etree.fromstring(body, _PARSER)
    except (etree.XMLSyntaxError, ValueError):
        raise invalid("tài liệu XML không đọc được") from None
    if root.getroottree().docinfo.internalDTD is not None:
        raise invalid("không chấp nhận khai báo DTD")
    if root.tag != _ENVELOPE_TAG:
        raise invalid("phần tử gốc phải là soap:Envelope (SOAP 1.1)")
    body_el = root.find(_BODY_TAG)
    if body_el is None or len(body_el) == 0:
        raise invalid("thiếu soap:Body hoặc soap:Body rỗng")
    op_el = body_el[0]
    tag = op_el.tag if isinstance(op_el.tag, str) else ""
    operation = tag[len(_REQUEST_PREFIX) :] if tag.startswith(_REQUEST_PREFIX) else ""
    if operation not in OPERATIONS:
        raise invalid("thao tác không được hỗ trợ")
    return operation, _fields(operation, op_el)


def _fields(operation: str, op_el: etree._Element) -> dict[str, str]:
    allowed = _REQUIRED[operation] + _OPTIONAL[operation]
    fields: dict[str, str] = {}
    for child in op_el:
        tag = child.tag if isinstance(child.tag, str) else ""
        name = tag[len(_REQUEST_PREFIX) :] if tag.startswith(_REQUEST_PREFIX) else ""
        if name not in allowed:
            raise invalid(f"trường không hợp lệ trong {operation} (cần namespace {REQUEST_NS})")
        if name in fields or len(child):
            raise invalid(f"trường {name} lặp lại hoặc không phải giá trị đơn")
        fields[name] = (child.text or "").strip()
    for name in _REQUIRED[operation]:
        if not fields.get(name):
            raise invalid(f"thiếu trường bắt buộc {name}")
    _check(fields)
    return fields


def _check(fields: dict[str, str]) -> None:
    for name, value in fields.items():
        if len(value) > _MAX_LENGTH.get(name, 64):
            raise invalid(f"trường {name} quá dài")
    pid = fields["SoDinhDanh"]
    if len(pid) != 12 or not pid.isascii() or not pid.isdigit():
        raise invalid("SoDinhDanh phải gồm đúng 12 chữ số")
    if "NgayThangNamSinh" in fields:
        try:
            dt.datetime.strptime(fields["NgayThangNamSinh"], "%Y%m%d")
        except ValueError:
            raise invalid("NgayThangNamSinh phải có dạng yyyyMMdd") from None
        if len(fields["NgayThangNamSinh"]) != 8:
            raise invalid("NgayThangNamSinh phải có dạng yyyyMMdd")
    if fields.get("GioiTinh") not in (None, "", "1", "2"):
        raise invalid("GioiTinh phải là 1 (nam) hoặc 2 (nữ)")


# -- deliberately broken replies (fault injection) ----------------------------------------

_PAD_BYTES = 5 * 1024 * 1024 + 4096
#: Where the `xxe` reply's external entity points unless the app is told otherwise.
DEFAULT_XXE_TARGET = "file:///etc/passwd"
_BOMB_LEVELS = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
# The first element of the reply whose text the entity replaces: a name part of a citizen
# (so a parser that resolved it would hand the file to the mapping), else the echoed request
# id, else a fault's text.
_ENTITY_SLOTS = (b"r:Ten", b"r:MaYeuCau", b"faultstring")


def _with_entity(reply: bytes, declarations: str, reference: str) -> bytes:
    """The reply with an internal DTD subset declaring entities and a reference to one.

    SOAP 1.1 forbids a DTD in a message; a hub that reads one, let alone resolves its
    entities, is vulnerable (XXE: files or URLs read into the answer; entity expansion:
    a few hundred bytes that grow to gigabytes).
    """
    doctype = f"<!DOCTYPE soap:Envelope [{declarations}]>\n".encode()
    body = reply[len(_XML_DECL) :] if reply.startswith(_XML_DECL) else reply
    for tag in _ENTITY_SLOTS:
        start = body.find(b"<" + tag + b">")
        end = body.find(b"</" + tag + b">", start)
        if start != -1 and end != -1:
            start += len(tag) + 2
            body = body[:start] + reference.encode() + body[end:]
            break
    return _XML_DECL + doctype + body


def with_external_entity(reply: bytes, target: str = DEFAULT_XXE_TARGET) -> bytes:
    """The `xxe` fault: the reply reading `target` (a file: or http: URL) through an entity."""
    quoted = target.replace('"', "%22")
    return _with_entity(reply, f'<!ENTITY xxe SYSTEM "{quoted}">', "&xxe;")


def with_entity_bomb(reply: bytes) -> bytes:
    """The `billion-laughs` fault: nine levels of ten references each, 10^9 "lol"s (3 GB)
    from under 1 KB of declarations."""
    return _with_entity(reply, '<!ENTITY lol0 "lol">' + _BOMB_LEVELS, "&lol9;")


def truncated(reply: bytes) -> bytes:
    """A reply cut in half: the root never closes, so no XML parser accepts it."""
    return reply[: max(len(reply) // 2, 1)]


def oversized(reply: bytes) -> bytes:
    """The same valid reply with a comment before the root pushing it past 5 MB."""
    if not reply.startswith(_XML_DECL):
        return reply + b"<!--" + b" " * _PAD_BYTES + b"-->"
    return _XML_DECL + b"<!--" + b" " * _PAD_BYTES + b"-->\n" + reply[len(_XML_DECL) :]
