"""Writes the example records of mappings/examples/ and their expected edXML (golden files).

Run ``python -m tests.mapping.examples_gen`` after changing an example below or the edXML
builder, then review the diff of mappings/examples/ before committing: the golden files are
the reviewed statement of what each record must become. The PDFs are tiny hand-written
one-page documents (text only), generated here so that no binary file is committed.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "mappings" / "examples"
FIXED_NOW = dt.datetime(2025, 6, 4, 9, 30, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))


def tiny_pdf(*lines: str) -> bytes:
    """A valid one-page PDF showing ``lines`` (ASCII) in Helvetica, with a correct xref."""
    text = "".join(
        f"BT /F1 12 Tf 72 {770 - 18 * i} Td ({_pdf_escape(line)}) Tj ET\n"
        for i, line in enumerate(lines)
    ).encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(text)).encode() + b" >>\nstream\n" + text + b"endstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n"
            "%%EOF\n").encode()
    return bytes(out)


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# ----------------------------------------------------------------------------- JSON format
A_VANTHU = {"phong_ban": "Văn phòng Sở", "ho_ten": "Nguyễn Thị Lan",
            "email": "vanthu@demo.camau.gov.vn", "dien_thoai": "0913000001"}
A_SIGNER = {"tham_quyen": "KT. GIÁM ĐỐC", "chuc_vu": "Phó Giám đốc", "ho_ten": "Trần Văn Bình"}


def _json_base(record_id: str, so: str, ky_hieu: str, date: str, kind: str, subject: str,
               pdf_name: str, urgency: str = "Thường") -> dict[str, Any]:
    return {
        "id": record_id,
        "loai_ban_ghi": "van_ban",
        "do_mat": "Thường",
        "do_khan": urgency,
        "co_quan_ban_hanh": {"ma": "SNV", "ten": "Sở Nội vụ tỉnh Cà Mau (demo)"},
        "noi_nhan": [{"ma": "STC"}],
        "so": so,
        "ky_hieu": ky_hieu,
        "ngay_ban_hanh": date,
        "noi_ban_hanh": "Cà Mau",
        "loai_van_ban": kind,
        "trich_yeu": subject,
        "nguoi_ky": A_SIGNER,
        "so_ban": 2,
        "so_trang": 1,
        "nguoi_danh_may": "NTL",
        "noi_nhan_khac": ["Như trên", "Lưu: VT, VP"],
        "chi_dao": "khong_chi_dao",
        "nghiep_vu": {"loai": "moi", "ban_giay": "0"},
        "van_thu": A_VANTHU,
        "van_ban_chinh": {
            "ten_tep": pdf_name,
            "loai_tep": "application/pdf",
            "noi_dung_base64": b64(tiny_pdf(f"SO NOI VU TINH CA MAU - {so}/{ky_hieu}",
                                            "Demo document for edoc-connector")),
        },
    }


def json_examples() -> dict[str, dict[str, Any]]:
    ordinary = _json_base("VBDI-2025-000101", "101", "SNV-VP", "2025-06-02", "Công văn",
                          "V/v đề nghị cung cấp số liệu biên chế công chức năm 2025",
                          "101-SNV-VP.signed.pdf")
    ordinary["han_xu_ly"] = "2025-06-16"
    ordinary["noi_dung"] = "Đề nghị Sở Tài chính cung cấp số liệu trước ngày 16/6/2025."

    urgent = _json_base("VBDI-2025-000102", "102", "SNV-TCBC", "2025-06-03", "Công văn",
                        "V/v rà soát kinh phí tinh giản biên chế đợt 2 năm 2025",
                        "102-SNV-TCBC.signed.pdf", urgency="Thượng khẩn")
    urgent["han_xu_ly"] = "2025-06-05"

    several = _json_base("VBDI-2025-000103", "45", "KH-SNV", "2025-06-03", "Kế hoạch",
                         "Kế hoạch kiểm tra công tác văn thư, lưu trữ năm 2025",
                         "45-KH-SNV.signed.pdf")
    several["noi_nhan"] = [{"ma": "STC"}, {"ma": "STP"}]
    several["phu_luc"] = ["Phụ lục I: Lịch kiểm tra", "Phụ lục II: Mẫu báo cáo"]
    several["tep_dinh_kem"] = [
        {"ten_tep": "45-KH-SNV-phu-luc-1.signed.pdf", "loai_tep": "application/pdf",
         "mo_ta": "Phụ lục I: Lịch kiểm tra", "tep_spool": "45-KH-SNV-phu-luc-1.signed.pdf"},
        {"ten_tep": "45-KH-SNV-phu-luc-2.signed.pdf", "loai_tep": "application/pdf",
         "mo_ta": "Phụ lục II: Mẫu báo cáo",
         "noi_dung_base64": b64(tiny_pdf("PHU LUC II - MAU BAO CAO"))},
    ]

    reply = _json_base("VBDI-2025-000104", "104", "SNV-VP", "2025-06-03", "Công văn",
                       "V/v trả lời Công văn số 230/STC-HCSN về dự toán kinh phí năm 2025",
                       "104-SNV-VP.signed.pdf")
    reply["tra_loi"] = [{"co_quan": "STC", "so_ky_hieu": "230/STC-HCSN",
                         "ma_dinh_danh": "000.00.32.H12,2025/05/26,230/STC-HCSN",
                         "ngay_ban_hanh": "2025-05-26"}]

    revoke = _json_base("VBDI-2025-000105", "101", "SNV-VP", "2025-06-02", "Công văn",
                        "V/v đề nghị cung cấp số liệu biên chế công chức năm 2025",
                        "101-SNV-VP.signed.pdf")
    revoke["nghiep_vu"] = {"loai": "thu_hoi", "ban_giay": "0",
                           "ly_do": "Thu hồi do sai sót số liệu tại mục 2",
                           "ma_dinh_danh_goc": "000.00.31.H12,2025/06/02,101/SNV-VP"}

    update = _json_base("VBDI-2025-000106", "45", "KH-SNV", "2025-06-03", "Kế hoạch",
                        "Kế hoạch kiểm tra công tác văn thư, lưu trữ năm 2025",
                        "45-KH-SNV.signed.pdf")
    update["noi_nhan"] = [{"ma": "STC"}, {"ma": "SGDDT"}]
    update["nghiep_vu"] = {
        "loai": "cap_nhat", "ban_giay": "0", "ly_do": "Bổ sung nơi nhận",
        "ma_dinh_danh_goc": "000.00.31.H12,2025/06/03,45/KH-SNV",
        "cap_nhat_thong_tin": "0", "cap_nhat_noi_nhan": "1",
        "thay_doi_noi_nhan": [{"ma": "STP", "thao_tac": "bo"},
                              {"ma": "SGDDT", "thao_tac": "them"}],
    }

    replace = _json_base("VBDI-2025-000107", "108", "SNV-VP", "2025-06-04", "Công văn",
                         "V/v đề nghị cung cấp số liệu biên chế công chức năm 2025 (thay thế)",
                         "108-SNV-VP.signed.pdf")
    replace["nghiep_vu"] = {
        "loai": "thay_the", "ban_giay": "0", "ly_do": "Thay thế Công văn số 101/SNV-VP",
        "thay_the": [{"ma_dinh_danh": "000.00.31.H12,2025/06/02,101/SNV-VP",
                      "noi_nhan": ["STC"]}],
    }

    secret = _json_base("VBDI-2025-000109", "12", "SNV-BVCT", "2025-06-03", "Báo cáo",
                        "Báo cáo tình hình bảo vệ chính trị nội bộ", "12-SNV-BVCT.pdf")
    secret["do_mat"] = "Tối mật"

    command = {
        "id": "LENH-2025-000042",
        "loai_ban_ghi": "trang_thai",
        "ma_trang_thai": "03",
        "van_ban": {"ma_dinh_danh": "000.00.32.H12,2025/05/26,230/STC-HCSN",
                    "co_quan_gui": "STC", "so_ky_hieu": "230/STC-HCSN",
                    "ngay_ban_hanh": "2025-05-26"},
        "can_bo": A_VANTHU,
        "ghi_chu": "Đã vào sổ văn bản đến số 1234",
        "thoi_diem": "2025-06-03T08:15:00+07:00",
    }
    return {
        "01-ordinary": ordinary, "02-urgent": urgent, "03-attachments": several,
        "04-reply": reply, "05-revoke": revoke, "06-update": update, "07-replace": replace,
        "08-secret": secret, "20-command-accepted": command,
    }


# ----------------------------------------------------------------------------- XML format
def _x(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _xml_record(record_id: str, so_ky_hieu: str, date: str, kind: str, subject: str,
                pdf_name: str, *, urgency: str = "BT", do_mat: str = "BT", extra: str = "",
                to: tuple[str, ...] = ("STC",), files: str = "") -> str:
    pdf = b64(tiny_pdf(f"SO NOI VU TINH CA MAU - {so_ky_hieu}", "Legacy export demo"))
    recipients = "".join(f'\n    <DonVi MaDonVi="{c}"/>' for c in to)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<VanBanDi ID="{record_id}">
  <DoMat>{do_mat}</DoMat>
  <DoKhan>{urgency}</DoKhan>
  <CoQuanBanHanh MaDonVi="SNV">Sở Nội vụ tỉnh Cà Mau (demo)</CoQuanBanHanh>
  <SoKyHieu>{so_ky_hieu}</SoKyHieu>
  <NgayBanHanh>{date}</NgayBanHanh>
  <NoiBanHanh>Cà Mau</NoiBanHanh>
  <LoaiVanBan>{kind}</LoaiVanBan>
  <TrichYeu>{_x(subject)}</TrichYeu>
  <NguoiKy ThamQuyen="KT. GIÁM ĐỐC" ChucVu="Phó Giám đốc">Lê Thị Hoa</NguoiKy>
  <NguoiDanhMay>LTH</NguoiDanhMay>
  <SoBan>3</SoBan>
  <SoTrang>1</SoTrang>
  <NoiNhan>{recipients}
  </NoiNhan>
  <NoiNhanKhac>
    <Noi>Như trên</Noi>
    <Noi>Lưu: VT, TCBC</Noi>
  </NoiNhanKhac>{extra}
  <VanThu PhongBan="Văn phòng Sở" Email="vanthu@demo.camau.gov.vn" DienThoai="0913000002">Phạm Văn Tâm</VanThu>
  <TepTin>
    <VanBanChinh TenTep="{pdf_name}" KieuTep="application/pdf">{pdf}</VanBanChinh>{files}
  </TepTin>
</VanBanDi>
"""


def xml_examples() -> dict[str, str]:
    return {
        "01-ordinary": _xml_record(
            "QLVB-2025-00201", "201/SNV-TCBC", "02/06/2025", "CV",
            "V/v báo cáo số lượng, chất lượng đội ngũ công chức năm 2025", "201-SNV-TCBC.pdf",
            extra="\n  <HanXuLy>20/06/2025</HanXuLy>\n  <NghiepVu Loai=\"MOI\"/>"),
        "02-urgent": _xml_record(
            "QLVB-2025-00202", "16/GM-SNV", "03/06/2025", "GM",
            "Giấy mời dự họp triển khai sắp xếp tổ chức bộ máy", "16-GM-SNV.pdf",
            urgency="HOA_TOC", extra="\n  <HanXuLy>04/06/2025</HanXuLy>"),
        "03-attachments": _xml_record(
            "QLVB-2025-00203", "46/KH-SNV", "03/06/2025", "KH",
            "Kế hoạch tuyển dụng viên chức năm 2025", "46-KH-SNV.pdf", to=("STC", "SGD"),
            files=(
                '\n    <DinhKem TenTep="46-KH-SNV-chi-tieu.pdf" KieuTep="application/pdf" '
                'DuongDan="46-KH-SNV-chi-tieu.pdf"/>'
                '\n    <DinhKem TenTep="46-KH-SNV-lich.pdf" KieuTep="application/pdf" '
                'DuongDan="46-KH-SNV-lich.pdf"/>')),
        "04-reply": _xml_record(
            "QLVB-2025-00204", "205/SNV-VP", "03/06/2025", "CV",
            "V/v trả lời Công văn số 231/STC-HCSN", "205-SNV-VP.pdf",
            extra=("\n  <TraLoiVanBan>\n    <VanBan CoQuan=\"STC\" SoKyHieu=\"231/STC-HCSN\" "
                   "NgayBanHanh=\"27/05/2025\" "
                   "MaDinhDanh=\"000.00.32.H12,2025/05/27,231/STC-HCSN\"/>\n  </TraLoiVanBan>")),
        "05-replace": _xml_record(
            "QLVB-2025-00205", "206/SNV-TCBC", "04/06/2025", "CV",
            "V/v báo cáo số lượng, chất lượng đội ngũ công chức năm 2025 (thay thế)",
            "206-SNV-TCBC.pdf",
            extra=("\n  <NghiepVu Loai=\"THAY_THE\">\n    <LyDo>Thay thế Công văn số "
                   "201/SNV-TCBC</LyDo>\n    <ThayThe>\n      <VanBan MaDinhDanh=\""
                   "000.00.31.H12,2025/06/02,201/SNV-TCBC\">\n        <DonVi MaDonVi=\"STC\"/>"
                   "\n      </VanBan>\n    </ThayThe>\n  </NghiepVu>")),
        "06-revoke": _xml_record(
            "QLVB-2025-00206", "16/GM-SNV", "03/06/2025", "GM",
            "Giấy mời dự họp triển khai sắp xếp tổ chức bộ máy", "16-GM-SNV.pdf",
            urgency="HOA_TOC",
            extra=("\n  <NghiepVu Loai=\"THU_HOI\" VanBanGoc=\"000.00.31.H12,2025/06/03,16/GM-SNV\">"
                   "\n    <LyDo>Hoãn cuộc họp</LyDo>\n  </NghiepVu>")),
        "08-secret": _xml_record(
            "QLVB-2025-00209", "13/BC-SNV", "03/06/2025", "BC",
            "Báo cáo công tác bảo vệ bí mật nhà nước", "13-BC-SNV.pdf", do_mat="MẬT"),
        "20-command-recall": """<?xml version="1.0" encoding="UTF-8"?>
<TrangThaiVanBan ID="LENH-2025-00077">
  <TrangThai>LAY_LAI</TrangThai>
  <VanBan MaDinhDanh="000.00.31.H12,2025/06/03,16/GM-SNV" CoQuanGui="SNV" SoKyHieu="16/GM-SNV" NgayBanHanh="03/06/2025"/>
  <CanBo PhongBan="Văn phòng Sở" Email="vanthu@demo.camau.gov.vn" DienThoai="0913000002">Phạm Văn Tâm</CanBo>
  <GhiChu>Đề nghị lấy lại Giấy mời do hoãn cuộc họp</GhiChu>
  <ThoiDiem>03/06/2025 16:40:00</ThoiDiem>
</TrangThaiVanBan>
""",
    }


SPOOL_FILES = {
    "45-KH-SNV-phu-luc-1.signed.pdf": ("PHU LUC I - LICH KIEM TRA",),
    "46-KH-SNV-chi-tieu.pdf": ("CHI TIEU TUYEN DUNG 2025",),
    "46-KH-SNV-lich.pdf": ("LICH TUYEN DUNG 2025",),
}


def write_records() -> None:
    spool = EXAMPLES / "spool"
    spool.mkdir(parents=True, exist_ok=True)
    for name, lines in SPOOL_FILES.items():
        (spool / name).write_bytes(tiny_pdf(*lines))
    folder = EXAMPLES / "qlvb-json"
    folder.mkdir(parents=True, exist_ok=True)
    for name, record in json_examples().items():
        text = json.dumps(record, ensure_ascii=False, indent=2) + "\n"
        (folder / f"{name}.json").write_text(text, encoding="utf-8")
    folder = EXAMPLES / "legacy-xml"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in xml_examples().items():
        (folder / f"{name}.xml").write_text(text, encoding="utf-8")


def write_goldens() -> None:
    from connector.edxml import build_package
    from connector.mapping import ClassificationRefused, load_mappings

    mappings = load_mappings(ROOT / "mappings", ROOT / "config" / "directory.yaml")
    own = mappings.directory.find("SNV")
    for fmt in mappings:
        for record in sorted((EXAMPLES / fmt.name).glob("*.*")):
            if record.suffix not in (".json", ".xml"):
                continue
            body = record.read_bytes()
            try:
                if "-command-" in record.stem:
                    pkg: Any = fmt.command_to_status(body, own=own, now=FIXED_NOW)
                else:
                    pkg = fmt.record_to_package(body, attachments_dir=EXAMPLES / "spool",
                                                now=FIXED_NOW)
            except ClassificationRefused:
                continue
            record.with_suffix(".edxml").write_bytes(build_package(pkg))


if __name__ == "__main__":
    write_records()
    if "--records-only" not in sys.argv:
        write_goldens()
