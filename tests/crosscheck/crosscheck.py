#!/usr/bin/env python3
"""Independent cross-check of smsgate's SMS PDU codec (3GPP TS 23.038 / 23.040).

Oracles (pinned in requirements.txt):
  * python-gsmmodem-new 0.13.0 (module ``gsmmodem.pdu``): SMS-SUBMIT encoder and
    SUBMIT / DELIVER / STATUS-REPORT decoder.
  * smspdudecoder 2.2.0: a second, independently written SUBMIT / DELIVER decoder,
    used as a second opinion where gsmmodem is known to be wrong.

Directions:
  r2p  smsgate pdu encode  -> decoded by both Python libraries
  p2r  gsmmodem SMS-SUBMIT -> smsgate pdu decode
       (the same user data re-wrapped as SMS-DELIVER) -> smsgate pdu decode
  sr   SMS-STATUS-REPORT built here (checked with gsmmodem) -> smsgate pdu decode
  vector  two published PDUs -> smsgate pdu decode
  err  bad input must give exit code 2 and a one-line error on stderr

Known bugs of the libraries are listed in LIB_BUGS below. Two wrong table entries
of gsmmodem are corrected at import (patch_gsmmodem_tables); inputs that hit the
other bugs are verified by the other library or counted as "skipped" with a reason.
selftest() runs first and fails if a pinned library no longer behaves as documented.

Usage: crosscheck.py [COUNT] [--seed N] [--show N] [--jobs N] [--bin PATH]
Prints "crosscheck: N passed, M failed[, K skipped]" last; exit 1 if M > 0.
"""

import argparse
import collections
import concurrent.futures as cf
import datetime as dt
import json
import os
import random
import re
import subprocess
import sys
from io import StringIO

from gsmmodem import pdu as G
from smspdudecoder.fields import SMSDeliver as S_Deliver
from smspdudecoder.fields import SMSSubmit as S_Submit

# --------------------------------------------------------------------------
# Reference tables (TS 23.038 §6.2.1 default alphabet + §6.2.1.1 extension table).
# Written out here, not taken from either library (both have table bugs).
GSM_BASIC = ('@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?'
             '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà')
GSM_EXT = {'\f': 0x0A, '^': 0x14, '{': 0x28, '}': 0x29, '\\': 0x2F,
           '[': 0x3C, '~': 0x3D, ']': 0x3E, '|': 0x40, '€': 0x65}
ESC = 0x1B
assert len(GSM_BASIC) == 128

MAX_PARTS = 6  # the CLI's default cap; more parts must be rejected with exit 2

# Known bugs of the oracle libraries (each one reproduced by selftest()):
LIB_BUGS = {
    'G-at': "gsmmodem.pdu.unpackSeptets drops the last septet of the user data when it "
            "is 0x00 ('@') and sits at bit offset 49 of a 7-octet group (the final "
            "'if b:' guard), so a part ending in '@' can decode one '@' short",
    'G-tab': "gsmmodem GSM7_BASIC has '`' at 0x5F where TS 23.038 has '§' (decode gives "
             "'`' for '§'; encode maps '`', which is not a GSM character, to 0x5F and "
             "sends '§' as UCS-2). Patched at import: see patch_gsmmodem_tables()",
    'G-ff': "gsmmodem GSM7_EXTENDED maps chr(0xFF) instead of form feed to ESC 0x0A, so "
            "form feed is sent as UCS-2 and ESC 0x0A is silently dropped on decode. "
            "Patched at import: see patch_gsmmodem_tables()",
    'G-astral': "gsmmodem.encodeUcs2 writes ord(c) as two bytes, so characters outside "
                "the BMP (most emoji) raise ValueError; worked around by handing it "
                "UTF-16 code units (lone surrogates in a str)",
    'G-split': "gsmmodem.divideTextUcs2 cuts every 67 UTF-16 units, splitting a surrogate "
               "pair across two parts (each part is then not valid UTF-16)",
    'S-esc': "smspdudecoder slices the decoded GSM string by characters instead of "
             "septets ([header_septets:UDL]); with ESC sequences in the text or a UDH "
             "septet equal to 0x1B the slice is shifted and spare fill bits show up as "
             "a trailing '@'",
}



def patch_gsmmodem_tables():
    """Correct the two wrong table entries of gsmmodem (bugs G-tab, G-ff) so that its
    algorithms (packing, UDH, splitting) can be used on '§', '`' and form feed.
    Only table data is replaced, with the TS 23.038 values written out above;
    selftest() checks that the unpatched bugs still exist in the pinned version."""
    global G_UNPATCHED
    G_UNPATCHED = (G.GSM7_BASIC, dict(G.GSM7_EXTENDED))
    G.GSM7_BASIC = GSM_BASIC
    ext = {k: v for k, v in G.GSM7_EXTENDED.items() if k != chr(0xFF)}
    ext['\f'] = chr(0x0A)
    G.GSM7_EXTENDED = ext


G_UNPATCHED = None


# --------------------------------------------------------------------------
# Small stdlib helpers (structure only; text decoding is done by the libraries)

def is_gsm(text):
    return all(c in GSM_BASIC and c != '\x1b' or c in GSM_EXT for c in text)


def gsm_cost(c):
    return 2 if c in GSM_EXT else 1


def utf16_units(text):
    return len(text.encode('utf-16-be')) // 2


def expected_split(text):
    """(encoding, [part texts]) of a greedy split that never splits an escape
    sequence or a surrogate pair (what Android and most SMSCs' clients do)."""
    if is_gsm(text):
        enc, cost, single, multi = 'gsm7', gsm_cost, 160, 153
    else:
        enc, cost, single, multi = 'ucs2', (lambda c: 2 if ord(c) > 0xFFFF else 1), 70, 67
    if sum(cost(c) for c in text) <= single:
        return enc, [text]
    parts, cur, n = [], [], 0
    for c in text:
        k = cost(c)
        if n + k > multi:
            parts.append(''.join(cur))
            cur, n = [], 0
        cur.append(c)
        n += k
    parts.append(''.join(cur))
    return enc, parts


def to_units(text):
    """str -> str of UTF-16 code units (astral chars become two lone surrogates)."""
    b = text.encode('utf-16-be')
    return ''.join(chr(int.from_bytes(b[i:i + 2], 'big')) for i in range(0, len(b), 2))


def from_units(s):
    """Inverse of to_units (joins surrogate pairs); raises on a lone surrogate."""
    return s.encode('utf-16-be', 'surrogatepass').decode('utf-16-be')


def from_units_lenient(s):
    return s.encode('utf-16-be', 'surrogatepass').decode('utf-16-be', 'replace')


def parse_tpdu(raw, has_smsc=True):
    """Minimal structural parse of an SMS-SUBMIT / SMS-DELIVER PDU (bytes)."""
    i = 0
    r = {}
    if has_smsc:
        r['smsc_len'] = raw[0]
        i = 1 + raw[0]
    else:
        r['smsc_len'] = None
    r['tpdu'] = raw[i:]
    fo = raw[i]
    r['fo'] = fo
    r['mti'] = fo & 3
    r['udhi'] = bool(fo & 0x40)
    i += 1
    if r['mti'] == 1:
        r['mr'] = raw[i]
        i += 1
        r['vpf'] = (fo >> 3) & 3
        r['srr'] = bool(fo & 0x20)
    alen = raw[i]
    r['addr'] = raw[i:i + 2 + (alen + 1) // 2]
    i += 2 + (alen + 1) // 2
    r['pid'] = raw[i]
    r['dcs'] = raw[i + 1]
    i += 2
    if r['mti'] == 1:
        i += {0: 0, 2: 1, 1: 7, 3: 7}[r['vpf']]
    else:
        r['scts'] = raw[i:i + 7]
        i += 7
    r['ud_with_udl'] = raw[i:]
    r['udl'] = raw[i]
    r['ud'] = raw[i + 1:]
    dcs = r['dcs']
    if dcs & 0xC0 == 0:
        r['alphabet'] = {0: 'gsm7', 1: '8bit', 2: 'ucs2', 3: 'reserved'}[(dcs >> 2) & 3]
    elif dcs & 0xF0 == 0xF0:
        r['alphabet'] = '8bit' if dcs & 4 else 'gsm7'
    else:
        r['alphabet'] = 'other'
    r['udh'] = None
    if r['udhi'] and r['ud']:
        hl = r['ud'][0]
        r['udh'] = r['ud'][1:1 + hl]
    return r


def septets(ud, count):
    v = int.from_bytes(bytes(ud), 'little')
    return [(v >> (7 * k)) & 0x7F for k in range(count)]


def concat_ies(udh):
    out, j = [], 0
    while udh is not None and j + 1 < len(udh):
        iei, ln = udh[j], udh[j + 1]
        out.append((iei, bytes(udh[j + 2:j + 2 + ln])))
        j += 2 + ln
    return out


def subseq_dropping(full, got, ch):
    """True if `got` is `full` with some occurrences of `ch` removed."""
    i = 0
    for c in full:
        if i < len(got) and got[i] == c:
            i += 1
        elif c != ch:
            return False
    return i == len(got)


# --------------------------------------------------------------------------
# Library wrappers

def g_decode(hexpdu):
    return G.decodeSmsPdu(hexpdu)


def s_decode_submit_text(hexpdu):
    return S_Submit.decode(StringIO(hexpdu))


def g_text_explained(original, got):
    """Is `got` what gsmmodem's known decode bug G-at makes of `original`?"""
    return subseq_dropping(original, got, '@')


# --------------------------------------------------------------------------
# The binary

class Bin:
    def __init__(self, path):
        self.path = path

    def run(self, args, stdin=None):
        try:
            p = subprocess.run([self.path] + args, input=stdin, capture_output=True,
                               timeout=30)
        except subprocess.TimeoutExpired:
            return 124, b'', b'timeout'
        return p.returncode, p.stdout, p.stderr


def parse_json(out):
    try:
        v = json.loads(out.decode('utf-8'))
    except Exception as e:  # noqa: BLE001
        raise ValueError('stdout is not one JSON object: %r (%s)' % (out[:300], e))
    if not isinstance(v, dict):
        raise ValueError('stdout JSON is not an object: %r' % (out[:300],))
    return v


def one_line_error(rc, out, err):
    problems = []
    if rc != 2:
        problems.append('exit code %r, expected 2' % rc)
    lines = err.decode('utf-8', 'replace').strip('\n').split('\n')
    if not err.strip() or len(lines) != 1:
        problems.append('stderr is not exactly one line: %r' % err[:300])
    return problems


# --------------------------------------------------------------------------
# Text generation

ASCII_GSM = ('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
             '      .,;:!?\'"()*+-/=<>#%&$@_\n')
EXT_CHARS = '€[]{}\\^~|'
GSM_SYMBOLS = '@£¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡¿ÄÖÑÜ§äöñüà'
ACCENTED = 'çêâ'
CYRILLIC = 'абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ'
CJK = '的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现'
EMOJI_BMP = '☺✓❤★☎☀☂♻⚽⌛'
EMOJI_ASTRAL = ['😀', '🎉', '👍', '👍🏽', '🤖', '🚀', '𝄞', '🇫🇷', '👨\u200d👩\u200d👧']


def rand_from(rng, alphabet, n):
    return ''.join(rng.choice(alphabet) for _ in range(n))


def mix(rng, n, pools):
    """n picks, each from a pool chosen with the given weights (list pools hold
    multi-code-point sequences such as emoji)."""
    names = [p for p, _ in pools]
    weights = [w for _, w in pools]
    return ''.join(rng.choice(rng.choices(names, weights)[0]) for _ in range(n))


def tidy(text):
    # The CLI reads `--text -` from stdin; keep texts from ending in a line break
    # so that a (reasonable) trimming of one trailing newline cannot matter.
    while text and text[-1] in '\r\n':
        text = text[:-1] + 'x'
    return text or 'x'


def boundary_texts(rng):
    a = lambda n: rand_from(rng, ASCII_GSM.replace('\n', ' '), n)  # noqa: E731
    u = lambda n: rand_from(rng, CYRILLIC + CJK, n)  # noqa: E731
    T = []
    for n in (1, 159, 160, 161, 152, 153, 154, 306, 307, 459, 460, 612, 765, 918):
        T.append(('gsm7-len%d' % n, a(n)))
    T.append(('gsm7-over-cap-919', a(919)))
    T.append(('gsm7-ext-over-cap-920', '€' * 460))
    T.append(('gsm7-ext-last-of-single-160', a(158) + '€'))
    T.append(('gsm7-ext-overflows-single-161', a(159) + '€'))
    T.append(('gsm7-ext-ends-part1-153', a(151) + '€' + a(40)))
    T.append(('gsm7-ext-straddles-part1', a(152) + '€' + a(40)))
    T.append(('gsm7-ext-straddles-part2', a(153) + a(152) + '[' + a(30)))
    T.append(('gsm7-ext-straddles-part3', a(153 * 2) + a(152) + '}' + a(3)))
    T.append(('gsm7-all-ext-80', rand_from(rng, EXT_CHARS, 80)))
    T.append(('gsm7-all-ext-81', rand_from(rng, EXT_CHARS, 81)))
    T.append(('gsm7-all-ext-77+x', rand_from(rng, EXT_CHARS, 77) + 'x'))
    T.append(('gsm7-formfeed', 'page1\fpage2 ' + a(20)))
    T.append(('gsm7-symbols-160', rand_from(rng, GSM_SYMBOLS, 160)))
    T.append(('gsm7-symbols-200', rand_from(rng, GSM_SYMBOLS, 200)))
    T.append(('gsm7-section-sign', '§ 12 Abs. 3'))
    T.append(('gsm7-at-end-8', 'abcdefg@'))
    T.append(('gsm7-at-end-16', a(15) + '@'))
    T.append(('gsm7-all-at-160', '@' * 160))
    T.append(('gsm7-at-tail-multipart', a(153) + a(6) + '@'))
    T.append(('gsm7-cr-lf', 'line1\r\nline2\rline3\nend'))
    T.append(('ucs2-backtick', 'run `ls`'))
    for n in (70, 71, 67, 134, 135, 201, 268, 335, 402):
        T.append(('ucs2-len%d' % n, u(n)))
    T.append(('ucs2-over-cap-403', u(403)))
    T.append(('ucs2-one-cedilla-in-200', a(100) + 'ç' + a(99)))
    T.append(('ucs2-astral-fits-70', u(68) + '😀'))
    T.append(('ucs2-astral-overflows-single', u(69) + '😀'))
    T.append(('ucs2-astral-straddles-part1', u(66) + '😀' + u(20)))
    T.append(('ucs2-astral-ends-part1', u(65) + '😀' + u(20)))
    T.append(('ucs2-astral-straddles-part2', u(67) + u(66) + '🎉' + u(10)))
    T.append(('ucs2-only-astral-35', '😀' * 35))
    T.append(('ucs2-only-astral-36', '😀' * 36))
    T.append(('ucs2-only-astral-100', ''.join(rng.choice(EMOJI_ASTRAL) for _ in range(40))))
    T.append(('ucs2-flags-zwj', '🇫🇷🇩🇪 👨\u200d👩\u200d👧 ok'))
    return [(lbl, tidy(t)) for lbl, t in T]


CATEGORIES = [
    ('ascii', 6), ('ext', 4), ('gsm-symbols', 3), ('accented', 3), ('cyrillic', 3),
    ('cjk', 3), ('emoji', 4), ('mixed', 3),
]
GSM_BOUNDS = [160, 161, 153, 154, 306, 307, 459, 460, 612, 613, 765, 766, 918]
UCS_BOUNDS = [70, 71, 67, 68, 134, 135, 201, 202, 268, 269, 335, 336, 402]


def random_text(rng):
    cat = rng.choices([c for c, _ in CATEGORIES], [w for _, w in CATEGORIES])[0]
    gsm_cat = cat in ('ascii', 'ext', 'gsm-symbols')
    if rng.random() < 0.4:
        n = rng.choice(GSM_BOUNDS if gsm_cat else UCS_BOUNDS) + rng.randint(-2, 1)
    else:
        n = rng.randint(1, 600 if gsm_cat else 420)
    n = max(1, n)
    if cat == 'ascii':
        t = rand_from(rng, ASCII_GSM, n)
    elif cat == 'ext':
        t = mix(rng, n, [(ASCII_GSM, 8), (EXT_CHARS, 2)])
    elif cat == 'gsm-symbols':
        t = mix(rng, n, [(ASCII_GSM, 5), (GSM_SYMBOLS, 4), (EXT_CHARS, 1)])
    elif cat == 'accented':
        t = mix(rng, n, [(ASCII_GSM, 8), (ACCENTED, 1), (GSM_SYMBOLS, 1)])
    elif cat == 'cyrillic':
        t = mix(rng, n, [(CYRILLIC, 8), (ASCII_GSM, 2)])
    elif cat == 'cjk':
        t = mix(rng, n, [(CJK, 8), (ASCII_GSM, 1)])
    elif cat == 'emoji':
        t = mix(rng, n, [(ASCII_GSM, 5), (EMOJI_BMP, 1), (EMOJI_ASTRAL, 2)])
    else:
        t = mix(rng, n, [(ASCII_GSM, 4), (EXT_CHARS, 1), (GSM_SYMBOLS, 1), (ACCENTED, 1),
                         (CYRILLIC, 1), (CJK, 1), (EMOJI_BMP, 1), (EMOJI_ASTRAL, 1)])
    return cat, tidy(t)


ALNUM_SENDERS = ['MMoney', 'Design@Home', 'BANK', 'InfoSMS', 'Vodafone', 'ABCDEFG', 'Tel-Co 24',
                 'Ü-Bahn', 'X', 'Promo_2024']


def random_e164(rng):
    cc = rng.choice(['1', '44', '49', '33', '7', '86', '91', '46', '351', '972', '2'])
    total = rng.randint(8, 15)
    rest = ''.join(rng.choice('0123456789') for _ in range(max(1, total - len(cc))))
    return '+' + cc + rest


def random_scts(rng):
    tzq = rng.randint(-48, 56)
    tz = dt.timezone(dt.timedelta(minutes=15 * tzq))
    # years 2000-2049 only: the 2-digit TP-SCTS year is read as 19yy by gsmmodem
    # from 69 on, and other decoders pivot at 50
    base = dt.datetime(2000, 1, 1) + dt.timedelta(seconds=rng.randint(0, 49 * 365 * 86400))
    return base.replace(tzinfo=tz)


# --------------------------------------------------------------------------
# Results

class Results:
    def __init__(self):
        self.passed = 0
        self.failed = []   # (case, [problems], details dict)
        self.skipped = []  # (case, reason)
        self.bug_hits = collections.Counter()
        self.by_group = collections.defaultdict(collections.Counter)

    def add(self, outcome):
        kind, case, payload, details, hits = outcome
        self.bug_hits.update(hits)
        group = re.split(r'[#:]', case)[0]
        if group == 'p2r':
            group += ':' + case.rsplit(':', 1)[1]
        self.by_group[group][kind] += 1
        if kind == 'pass':
            self.passed += 1
        elif kind == 'skip':
            self.skipped.append((case, payload, details))
        else:
            self.failed.append((case, payload, details))


def outcome(case, problems, details, skip=None, hits=()):
    if problems:
        return ('fail', case, problems, details, hits)
    if skip:
        return ('skip', case, skip, details, hits)
    return ('pass', case, None, details, hits)


# --------------------------------------------------------------------------
# Direction Rust -> Python

def check_r2p(binary, case):
    text = case['text']
    args = ['pdu', 'encode', '--to', case['to'], '--text', '-'] + case['opts']
    rc, out, err = binary.run(args, stdin=text.encode('utf-8'))
    enc, exp_parts = expected_split(text)
    details = {'text': text, 'cmd': 'smsgate ' + ' '.join(args), 'rc': rc,
               'stderr': err.decode('utf-8', 'replace')[:500]}
    problems = []
    hits = []
    if len(exp_parts) > MAX_PARTS:
        if rc == 2:
            problems += one_line_error(rc, out, err)
            return outcome(case['id'], problems, details)
        problems.append('text needs %d parts (> %d): expected exit 2, got %d'
                        % (len(exp_parts), MAX_PARTS, rc))
        if rc != 0:
            return outcome(case['id'], problems, details)
    elif rc != 0:
        problems.append('encode failed with exit %d: %s' % (rc, err.decode('utf-8', 'replace').strip()))
        return outcome(case['id'], problems, details)
    try:
        js = parse_json(out)
    except ValueError as e:
        return outcome(case['id'], [str(e)], details)
    details['json'] = js
    parts = js.get('parts')
    if not isinstance(parts, list) or not parts:
        return outcome(case['id'], ['JSON has no non-empty "parts" list'], details)
    if js.get('encoding') != enc:
        problems.append('encoding: expected %r (TS 23.038 default alphabet + extension '
                        'table %s), got %r' % (enc, 'covers' if enc == 'gsm7' else 'does not cover',
                                               js.get('encoding')))
    if len(parts) != len(exp_parts) and len(exp_parts) <= MAX_PARTS:
        problems.append('part count: expected %d (greedy split, %s), got %d'
                        % (len(exp_parts), '153 septets/part' if enc == 'gsm7' else '67 UTF-16 units/part',
                           len(parts)))
    n = len(parts)
    refs = set()
    g_texts, s_texts, s_err = [], [], None
    s_unreliable = False
    smsc_expected = None
    if '--smsc' in case['opts']:
        smsc_expected = case['opts'][case['opts'].index('--smsc') + 1]
    validity_expected = None
    if '--validity' in case['opts']:
        validity_expected = {'3d': 3 * 86400, '1d': 86400, '12h': 43200}[
            case['opts'][case['opts'].index('--validity') + 1]]
    for k, p in enumerate(parts, 1):
        tag = 'part %d/%d: ' % (k, n)
        hexpdu = p.get('pdu') if isinstance(p, dict) else None
        try:
            raw = bytes.fromhex(hexpdu)
        except Exception:  # noqa: BLE001
            problems.append(tag + 'pdu is not hex: %r' % (hexpdu,))
            continue
        try:
            st = parse_tpdu(raw)
        except Exception as e:  # noqa: BLE001
            problems.append(tag + 'PDU structure unparsable (%s): %s' % (e, hexpdu))
            continue
        smsc_len = raw[0]
        tl = len(raw) - 1 - smsc_len
        if p.get('tpdu_length') != tl:
            problems.append(tag + 'tpdu_length %r != len(pdu)/2 - 1 - smsc_len = %d'
                            % (p.get('tpdu_length'), tl))
        if st['mti'] != 1:
            problems.append(tag + 'TP-MTI is %d, expected 1 (SMS-SUBMIT)' % st['mti'])
        if st['alphabet'] != enc:
            problems.append(tag + 'DCS 0x%02X means %s, expected %s' % (st['dcs'], st['alphabet'], enc))
        if st['udhi'] != (n > 1):
            problems.append(tag + 'TP-UDHI is %s with %d part(s)' % (st['udhi'], n))
        if st['srr'] != ('--status-report' in case['opts']):
            problems.append(tag + 'TP-SRR is %s' % st['srr'])
        # UD length consistency (TS 23.040 9.2.3.16: UDL in septets for GSM 7-bit, octets otherwise)
        udl, ud = st['udl'], st['ud']
        if enc == 'gsm7':
            if udl > 160:
                problems.append(tag + 'UDL %d > 160 septets' % udl)
            if len(ud) != (udl * 7 + 7) // 8:
                problems.append(tag + 'UD is %d octets, UDL %d septets needs %d'
                                % (len(ud), udl, (udl * 7 + 7) // 8))
        else:
            if udl > 140 or len(ud) != udl or udl % 2:
                problems.append(tag + 'UDL %d / UD %d octets inconsistent (max 140, even)' % (udl, len(ud)))
        # UDH / concatenation
        ies = concat_ies(st['udh'])
        conc = [v for i, v in ies if i == 0x00]
        if n > 1:
            if len(conc) != 1 or len(conc[0]) != 3:
                problems.append(tag + 'expected one 8-bit concatenation IE (IEI 00), UDH=%s'
                                % (bytes(st['udh'] or b'').hex().upper()))
            else:
                ref, tot, seq = conc[0]
                refs.add(ref)
                if tot != n or seq != k:
                    problems.append(tag + 'concat IE says part %d of %d' % (seq, tot))
            if any(i == 0x08 for i, _ in ies):
                problems.append(tag + 'unexpected 16-bit concatenation IE (IEI 08)')
        hdr_oct = (st['udh'] is not None) and (1 + len(st['udh'])) or 0
        if enc == 'gsm7':
            hs = (hdr_oct * 8 + 6) // 7
            sp = septets(ud, udl)
            if hs and ESC in sp[:hs]:
                s_unreliable = True
            if sp and sp[-1] == ESC and udl > hs:
                problems.append(tag + 'part ends with an ESC septet: an extension character '
                                'is split across parts (TS 23.038 6.2.1.1: ESC and the '
                                'following septet form one character)')
        elif enc == 'ucs2' and len(ud) >= 2:
            last = int.from_bytes(ud[-2:], 'big')
            if 0xD800 <= last <= 0xDBFF:
                problems.append(tag + 'part ends with a high surrogate U+%04X: a surrogate '
                                'pair is split across parts' % last)
        # Library 1: gsmmodem
        try:
            gd = g_decode(hexpdu)
            if gd['type'] != 'SMS-SUBMIT':
                problems.append(tag + 'gsmmodem sees type %s' % gd['type'])
            if gd['number'] != case['to']:
                problems.append(tag + 'recipient: gsmmodem decodes %r, expected %r' % (gd['number'], case['to']))
            if gd['tpdu_length'] != tl:
                problems.append(tag + 'gsmmodem TPDU length %d != %d' % (gd['tpdu_length'], tl))
            if smsc_expected is not None and gd['smsc'] != smsc_expected:
                problems.append(tag + 'SMSC: gsmmodem decodes %r, expected %r' % (gd['smsc'], smsc_expected))
            if smsc_expected is None and smsc_len != 0:
                problems.append(tag + 'SMSC field length %d, expected 0 without --smsc' % smsc_len)
            if validity_expected is not None:
                v = gd.get('validity')
                if st['vpf'] != 2 or not isinstance(v, dt.timedelta) or v.total_seconds() != validity_expected:
                    problems.append(tag + 'validity: TP-VPF=%d, gsmmodem decodes %r, expected relative %ds'
                                    % (st['vpf'], v, validity_expected))
            if n > 1:
                gc = [ie for ie in gd.get('udh', []) if isinstance(ie, G.Concatenation)]
                if len(gc) != 1 or (gc[0].reference, gc[0].parts, gc[0].number) != (conc[0][0] if conc else None, n, k):
                    problems.append(tag + 'gsmmodem concat IE: %r' % [(ie.id, ie.data) for ie in gd.get('udh', [])])
            g_texts.append(gd['text'])
        except Exception as e:  # noqa: BLE001
            problems.append(tag + 'gsmmodem cannot decode the PDU: %r' % (e,))
            g_texts.append(None)
        # Library 2: smspdudecoder
        try:
            sd = s_decode_submit_text(hexpdu)
            num = sd['recipient']['number']
            if sd['recipient']['toa']['ton'] == 'international':
                num = '+' + num
            if num != case['to']:
                problems.append(tag + 'recipient: smspdudecoder decodes %r' % num)
            s_enc = {'gsm': 'gsm7', 'ucs2': 'ucs2', 'binary': '8bit'}[sd['dcs']['encoding']]
            if s_enc != enc:
                problems.append(tag + 'smspdudecoder reads encoding %s' % s_enc)
            s_texts.append(sd['user_data']['data'])
        except Exception as e:  # noqa: BLE001
            s_err = repr(e)
            s_texts.append(None)
    if n > 1 and len(refs) > 1:
        problems.append('concatenation reference differs between parts: %s' % sorted(refs))
    # Joined text
    details['pdus'] = [p.get('pdu') for p in parts if isinstance(p, dict)]
    g_join = None if None in g_texts else from_units_lenient(''.join(g_texts))
    s_join = None if None in s_texts else ''.join(s_texts)
    details['gsmmodem_text'] = g_join
    details['smspdudecoder_text'] = s_join if s_err is None else 'error: ' + s_err
    g_ok, s_ok = g_join == text, s_join == text
    if enc == 'gsm7' and any(c in GSM_EXT for c in text):
        s_unreliable = True
    g_expl = g_ok or (enc == 'gsm7' and g_join is not None and g_text_explained(text, g_join))
    s_expl = s_ok or (enc == 'gsm7' and s_unreliable)
    skip = None
    if g_ok and s_ok:
        pass
    elif (g_ok or s_ok) and g_expl and s_expl:
        hits.append('G-at' if not g_ok else 'S-esc')
    elif g_expl and s_expl:
        skip = ('both libraries hit known bugs on this text (%s / %s); text not verifiable'
                % ('G-at', 'S-esc'))
    else:
        problems.append('joined text differs from the input: gsmmodem %s, smspdudecoder %s'
                        % ('agrees' if g_ok else 'gives %r' % (g_join,),
                           'agrees' if s_ok else 'gives %r' % (s_join,) if s_err is None else 'raised ' + s_err))
    return outcome(case['id'], problems, details, skip, hits)


# --------------------------------------------------------------------------
# Direction Python -> Rust

def lib_part_texts(units_text):
    """The part texts gsmmodem.encodeSmsSubmitPdu uses (same calls as its code)."""
    try:
        encoded_len = len(G.encodeGsm7(units_text))
        gsm = True
    except ValueError:
        gsm = False
    if gsm and encoded_len <= 160 or not gsm and len(units_text) <= 70:
        return [units_text]
    return G.divideTextGsm7(units_text) if gsm else G.divideTextUcs2(units_text)


def rust_decode(binary, hexpdu, no_smsc=False):
    args = ['pdu', 'decode', hexpdu] + (['--no-smsc'] if no_smsc else [])
    rc, out, err = binary.run(args)
    if rc != 0:
        raise ValueError('`smsgate %s` exit %d: %s' % (' '.join(args), rc,
                                                       err.decode('utf-8', 'replace').strip()))
    return parse_json(out)


EXTRA_KEYS = collections.Counter()  # keys beyond the documented interface (noted, not failed)


def cmp(problems, tag, what, got, exp):
    if what == 'concat' and isinstance(got, dict) and isinstance(exp, dict):
        extra = sorted(set(got) - set(exp))
        if extra:
            EXTRA_KEYS.update('concat.' + k for k in extra)
        got = {k: got.get(k) for k in exp}
    if got != exp:
        problems.append('%s%s: expected %r, got %r' % (tag, what, exp, got))


def check_p2r(binary, case):
    text = case['text']
    details = {'text': text}
    units = to_units(text)  # G-astral workaround
    try:
        pdus = G.encodeSmsSubmitPdu(case['to'], units, reference=case['ref'],
                                    validity=case['validity'], smsc=case['smsc'],
                                    requestStatusReport=case['srr'], sendFlash=case['flash'])
    except Exception as e:  # noqa: BLE001
        return outcome(case['id'] + ':submit+deliver', [], details, skip='gsmmodem cannot encode: %r' % (e,))
    part_units = lib_part_texts(units)
    if len(part_units) != len(pdus):
        return outcome(case['id'] + ':submit+deliver', [], details,
                       skip='script cannot reproduce gsmmodem split (%d vs %d)' % (len(part_units), len(pdus)))
    try:
        part_texts = [from_units(t) for t in part_units]
    except UnicodeError:
        # G-split: the library cut a surrogate pair in two; the parts are not
        # valid UTF-16 on their own, so a per-part decode has no right answer.
        return outcome(case['id'] + ':submit+deliver', [], details, skip='gsmmodem bug G-split: surrogate pair split by the library',
                       hits=['G-split'])
    n = len(pdus)
    problems = []
    hexes = [str(p) for p in pdus]
    details['pdus'] = hexes
    dlv_problems = []
    dlv_hexes = []
    for k, (hexpdu, ptext) in enumerate(zip(hexes, part_texts), 1):
        tag = 'submit part %d/%d: ' % (k, n)
        raw = bytes.fromhex(hexpdu)
        st = parse_tpdu(raw)
        gd = G.decodeSmsPdu(hexpdu)
        enc = st['alphabet']
        no_smsc = case['no_smsc']
        try:
            js = rust_decode(binary, hexpdu[2 + 2 * raw[0]:] if no_smsc else hexpdu, no_smsc)
        except ValueError as e:
            problems.append(tag + str(e))
            js = None
        if js is not None:
            cmp(problems, tag, 'type', js.get('type'), 'submit')
            cmp(problems, tag, 'smsc', js.get('smsc'), case['smsc'] if not no_smsc else None)
            cmp(problems, tag, 'to', js.get('to'), case['to'])
            cmp(problems, tag, 'message_reference', js.get('message_reference'), case['ref'])
            cmp(problems, tag, 'encoding', js.get('encoding'), enc)
            cmp(problems, tag, 'text', js.get('text'), ptext)
            v = gd.get('validity')
            cmp(problems, tag, 'validity', js.get('validity'),
                None if v is None else int(v.total_seconds()))
            cmp(problems, tag, 'status_report_requested', js.get('status_report_requested'), case['srr'])
            cmp(problems, tag, 'concat', js.get('concat'),
                None if n == 1 else {'reference': case['ref'], 'part': k, 'total': n})
        # Same user data as an SMS-DELIVER (gsmmodem has no DELIVER encoder; the header
        # is built here and the result is decoded by gsmmodem first as a sanity check).
        dtag = 'deliver part %d/%d: ' % (k, n)
        smsc_field = bytes(G._encodeAddressField(case['smsc'], smscField=True)) if case['smsc'] else b'\x00'
        fo = 0x04 | (0x40 if st['udhi'] else 0) | (0x20 if case['sri'] else 0)
        scts = bytes(G._encodeTimestamp(case['scts']))
        oa, sender = bytes(st['addr']), case['to']
        if case['alnum']:
            # TS 23.040 9.1.2.5: TON 101 alphanumeric, GSM 7-bit packed, length =
            # number of useful semi-octets. gsmmodem's own _encodeAddressField gets that
            # length wrong for 7 chars (counts whole octets), so only its packer is used.
            sept = G.encodeGsm7(case['alnum'])
            oa, sender = bytes([(len(sept) * 7 + 3) // 4, 0xD0]) + bytes(G.packSeptets(sept)), case['alnum']
        dpdu = smsc_field + bytes([fo]) + oa + bytes([st['pid'], st['dcs']]) + scts + bytes(st['ud_with_udl'])
        dhex = dpdu.hex().upper()
        dlv_hexes.append(dhex)
        gdd = G.decodeSmsPdu(dhex)
        assert gdd['type'] == 'SMS-DELIVER' and (case['alnum'] or gdd['number'] == case['to']), gdd
        assert gdd['time'] == case['scts'] and gdd['time'].utcoffset() == case['scts'].utcoffset(), gdd
        if case['alnum']:
            sd = S_Deliver.decode(StringIO(dhex))['sender']
            assert sd['toa']['ton'] == 'alphanumeric' and sd['number'][:len(case['alnum'])] == case['alnum'], sd
        try:
            jd = rust_decode(binary, dhex)
        except ValueError as e:
            dlv_problems.append(dtag + str(e))
            continue
        cmp(dlv_problems, dtag, 'type', jd.get('type'), 'deliver')
        cmp(dlv_problems, dtag, 'smsc', jd.get('smsc'), case['smsc'])
        cmp(dlv_problems, dtag, 'from', jd.get('from'), sender)
        cmp(dlv_problems, dtag, 'text', jd.get('text'), ptext)
        cmp(dlv_problems, dtag, 'encoding', jd.get('encoding'), enc)
        cmp(dlv_problems, dtag, 'concat', jd.get('concat'),
            None if n == 1 else {'reference': case['ref'], 'part': k, 'total': n})
        ts = jd.get('timestamp')
        try:
            got = dt.datetime.fromisoformat(ts)
            if got != case['scts'] or got.utcoffset() != case['scts'].utcoffset():
                raise ValueError
        except (TypeError, ValueError):
            dlv_problems.append(dtag + 'timestamp: expected %s, got %r' % (case['scts'].isoformat(), ts))
    details['deliver_pdus'] = dlv_hexes
    hits = ['G-astral'] if any(ord(c) > 0xFFFF for c in text) else []
    return [outcome(case['id'] + ':submit', problems, details, hits=hits),
            outcome(case['id'] + ':deliver', dlv_problems, dict(details), hits=())]


# --------------------------------------------------------------------------
# Status reports (TS 23.040 9.2.2.3), built here, checked with gsmmodem first

def check_status_report(binary, case):
    smsc_field = bytes(G._encodeAddressField(case['smsc'], smscField=True)) if case['smsc'] else b'\x00'
    pdu = (smsc_field + bytes([0x06, case['ref']]) + bytes(G._encodeAddressField(case['to']))
           + bytes(G._encodeTimestamp(case['scts'])) + bytes(G._encodeTimestamp(case['dt']))
           + bytes([case['st']]))
    hexpdu = pdu.hex().upper()
    gd = G.decodeSmsPdu(hexpdu)
    assert gd['type'] == 'SMS-STATUS-REPORT' and gd['status'] == case['st'] and gd['number'] == case['to']
    details = {'pdu': hexpdu}
    problems = []
    try:
        js = rust_decode(binary, hexpdu)
    except ValueError as e:
        return outcome(case['id'], [str(e)], details)
    details['json'] = js
    cmp(problems, '', 'type', js.get('type'), 'status_report')
    cmp(problems, '', 'smsc', js.get('smsc'), case['smsc'])
    cmp(problems, '', 'message_reference', js.get('message_reference'), case['ref'])
    cmp(problems, '', 'recipient', js.get('recipient'), case['to'])
    for key, exp in (('timestamp', case['scts']), ('discharge_time', case['dt'])):
        try:
            got = dt.datetime.fromisoformat(js.get(key))
            if got != exp or got.utcoffset() != exp.utcoffset():
                raise ValueError
        except (TypeError, ValueError):
            problems.append('%s: expected %s, got %r' % (key, exp.isoformat(), js.get(key)))
    status = js.get('status')
    if not isinstance(status, dict) or status.get('code') != case['st'] or not isinstance(status.get('category'), str):
        problems.append('status: expected code %d with a category string, got %r' % (case['st'], status))
    return outcome(case['id'], problems, details)


VECTORS = [
    ('vector:submit-hellohello', '0011000B916407281553F80000AA0AE8329BFD4697D9EC37',
     {'type': 'submit', 'smsc': None, 'to': '+46708251358', 'message_reference': 0,
      'text': 'hellohello', 'encoding': 'gsm7', 'validity': 4 * 86400,
      'status_report_requested': False, 'concat': None}),
    ('vector:deliver-how-are-you', '07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07',
     {'type': 'deliver', 'smsc': '+31624000000', 'from': '+31641600986', 'text': 'How are you?',
      'encoding': 'gsm7', 'concat': None,
      'timestamp': dt.datetime(2002, 8, 26, 19, 37, 41, tzinfo=dt.timezone.utc)}),
]


def check_vector(binary, case):
    label, hexpdu, exp = case['vector']
    problems = []
    try:
        js = rust_decode(binary, hexpdu)
    except ValueError as e:
        return outcome(case['id'], [str(e)], {'pdu': hexpdu})
    for k, v in exp.items():
        got = js.get(k)
        if isinstance(v, dt.datetime):
            try:
                g = dt.datetime.fromisoformat(got)
                if g != v or g.utcoffset() != v.utcoffset():
                    raise ValueError
            except (TypeError, ValueError):
                problems.append('%s: expected %s, got %r' % (k, v.isoformat(), got))
        else:
            cmp(problems, '', k, got, v)
    return outcome(case['id'], problems, {'pdu': hexpdu, 'json': js})


def check_bad_input(binary, case):
    rc, out, err = binary.run(case['args'], stdin=case.get('stdin'))
    return outcome(case['id'], one_line_error(rc, out, err),
                   {'cmd': 'smsgate ' + ' '.join(case['args']), 'rc': rc,
                    'stderr': err.decode('utf-8', 'replace')[:300]})


# --------------------------------------------------------------------------
# Self-test of the libraries (known vectors + the known-bug catalogue)

def selftest():
    errs = []
    sub = '0011000B916407281553F80000AA0AE8329BFD4697D9EC37'
    dlv = '07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07'
    d = G.decodeSmsPdu(sub)
    if (d['type'], d['number'], d['text']) != ('SMS-SUBMIT', '+46708251358', 'hellohello'):
        errs.append('gsmmodem SUBMIT vector: %r' % d)
    d = G.decodeSmsPdu(dlv)
    if (d['type'], d['number'], d['text'], d['smsc']) != ('SMS-DELIVER', '+31641600986', 'How are you?', '+31624000000'):
        errs.append('gsmmodem DELIVER vector: %r' % d)
    if d['time'] != dt.datetime(2002, 8, 26, 19, 37, 41, tzinfo=dt.timezone.utc) or d['time'].utcoffset():
        # TZ octet 0x08 = semi-octets '8','0': sign bit set, 0 quarter hours (TS 23.040 9.2.3.11)
        errs.append('gsmmodem DELIVER timestamp: %r' % d['time'])
    s = S_Submit.decode(StringIO(sub))
    if (s['recipient']['number'], s['user_data']['data']) != ('46708251358', 'hellohello'):
        errs.append('smspdudecoder SUBMIT vector: %r' % s)
    s = S_Deliver.decode(StringIO(dlv))
    if (s['sender']['number'], s['user_data']['data']) != ('31641600986', 'How are you?'):
        errs.append('smspdudecoder DELIVER vector: %r' % s)
    if str(G.encodeSmsSubmitPdu('+46708251358', 'hellohello', requestStatusReport=False)[0]) != \
            '0001000B916407281553F800000AE8329BFD4697D9EC37':
        errs.append('gsmmodem SUBMIT encode vector')
    # Bug catalogue still reproduces (if a library gets fixed, revisit LIB_BUGS).
    h = str(G.encodeSmsSubmitPdu('+15551234567', 'abcdefg@', requestStatusReport=False)[0])
    if G.decodeSmsPdu(h)['text'] != 'abcdefg' or S_Submit.decode(StringIO(h))['user_data']['data'] != 'abcdefg@':
        errs.append('bug G-at no longer reproduces')
    basic, ext = G_UNPATCHED
    if basic[0x5F] != '`' or '§' in basic:
        errs.append('bug G-tab no longer reproduces')
    if '\f' in ext or ext.get(chr(0xFF)) != 0x0A:
        errs.append('bug G-ff no longer reproduces')
    if G.decodeGsm7(bytearray([0x5F, ESC, 0x0A])) != '§\f' or G.encodeGsm7('`§\f', True) != bytearray([0x5F, ESC, 0x0A]):
        errs.append('patch_gsmmodem_tables() did not take effect')
    try:
        G.encodeSmsSubmitPdu('+15551234567', '😀')
        errs.append('bug G-astral no longer reproduces')
    except ValueError:
        pass
    if len(G.divideTextUcs2(to_units('a' * 66 + '😀'))[0]) != 67:
        errs.append('bug G-split no longer reproduces')
    h = str(G.encodeSmsSubmitPdu('+15551234567', '€' * 81, requestStatusReport=False)[1])
    if S_Submit.decode(StringIO(h))['user_data']['data'] == '€':
        errs.append('bug S-esc no longer reproduces')
    return errs


# --------------------------------------------------------------------------

def build_cases(count, seed):
    rng = random.Random(seed)
    texts = boundary_texts(rng)
    while len(texts) < count:
        cat, t = random_text(rng)
        texts.append((cat, t))
    texts = texts[:count]
    r2p, p2r, sr, bad = [], [], [], []
    for i, (label, t) in enumerate(texts):
        opts = []
        if rng.random() < 0.25:
            opts += ['--smsc', random_e164(rng)]
        if rng.random() < 0.25:
            opts += ['--status-report']
        if rng.random() < 0.25:
            opts += ['--validity', rng.choice(['3d', '1d', '12h'])]
        r2p.append({'id': 'r2p#%d[%s]' % (i, label), 'text': t, 'to': random_e164(rng), 'opts': opts})
        validity = rng.choice([None, None, dt.timedelta(minutes=5 * rng.randint(1, 144)),
                               dt.timedelta(hours=rng.randint(13, 24)), dt.timedelta(days=rng.randint(2, 30)),
                               dt.timedelta(weeks=rng.randint(5, 63))])
        # national (TON 010) recipients/originators are written without '+'
        to = random_e164(rng) if rng.random() < 0.85 else random_e164(rng)[1:]
        p2r.append({'id': 'p2r#%d[%s]' % (i, label), 'text': t, 'to': to,
                    'flash': rng.random() < 0.15,
                    'alnum': rng.choice(ALNUM_SENDERS) if rng.random() < 0.2 else None,
                    'ref': rng.randint(0, 255), 'validity': validity,
                    'smsc': random_e164(rng) if rng.random() < 0.3 else None,
                    'srr': rng.random() < 0.5, 'sri': rng.random() < 0.3,
                    'no_smsc': rng.random() < 0.3, 'scts': random_scts(rng)})
    stati = [0x00, 0x01, 0x02, 0x20, 0x21, 0x25, 0x30, 0x40, 0x41, 0x45, 0x50, 0x60, 0x61, 0x65]
    for i in range(max(4, count // 20)):
        sr.append({'id': 'sr#%d' % i, 'ref': rng.randint(0, 255), 'to': random_e164(rng),
                   'smsc': random_e164(rng) if rng.random() < 0.5 else None,
                   'scts': random_scts(rng), 'dt': random_scts(rng), 'st': stati[i % len(stati)]})
    bad = [
        {'id': 'err:decode-not-hex', 'args': ['pdu', 'decode', 'ZZ11']},
        {'id': 'err:decode-odd-hex', 'args': ['pdu', 'decode', '0011000B916407281553F80000AA0AE8329BFD4697D9EC3']},
        {'id': 'err:decode-truncated', 'args': ['pdu', 'decode', '0011000B9164072815']},
        {'id': 'err:decode-udl-too-long', 'args': ['pdu', 'decode', '0011000B916407281553F80000AAFFE8329BFD4697D9EC37']},
        {'id': 'err:encode-bad-number', 'args': ['pdu', 'encode', '--to', '+1555x1234', '--text', 'hi']},
        {'id': 'err:encode-over-cap', 'args': ['pdu', 'encode', '--to', '+15551234567', '--text', '-'],
         'stdin': b'a' * 919},
    ]
    return r2p, p2r, sr, bad


def fmt_details(d):
    out = []
    for k, v in d.items():
        if k == 'json':
            v = json.dumps(v, ensure_ascii=False)
        s = repr(v) if k in ('text', 'gsmmodem_text', 'smspdudecoder_text') else str(v)
        if len(s) > 1500:
            s = s[:1500] + '...'
        out.append('      %s: %s' % (k, s))
    return '\n'.join(out)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('count', nargs='?', type=int, default=300)
    ap.add_argument('--seed', type=int, default=20240601)
    ap.add_argument('--show', type=int, default=8, help='mismatches printed in detail')
    ap.add_argument('--jobs', type=int, default=max(4, 2 * (os.cpu_count() or 2)))
    ap.add_argument('--bin', default=os.environ.get('SMSGATE_BIN') or
                    os.path.join(here, '..', '..', 'target', 'debug', 'smsgate'))
    ap.add_argument('--selftest', action='store_true', help='only check the Python libraries')
    ap.add_argument('--json-report', help='write every failure/skip to this file')
    a = ap.parse_args()

    patch_gsmmodem_tables()
    errs = selftest()
    if errs:
        print('library selftest failed (pinned versions changed?):', *errs, sep='\n  ')
        print('crosscheck: 0 passed, %d failed' % len(errs))
        return 1
    if a.selftest:
        print('library selftest ok')
        return 0
    binary = Bin(os.path.abspath(a.bin))
    if not os.access(binary.path, os.X_OK):
        print('smsgate binary not found at %s (set SMSGATE_BIN)' % binary.path, file=sys.stderr)
        return 2

    r2p, p2r, sr, bad = build_cases(a.count, a.seed)
    res = Results()
    jobs = [(check_r2p, c) for c in r2p] + [(check_p2r, c) for c in p2r] + \
           [(check_status_report, c) for c in sr] + [(check_bad_input, c) for c in bad] + \
           [(check_vector, {'id': v[0], 'vector': v}) for v in VECTORS]
    with cf.ThreadPoolExecutor(a.jobs) as pool:
        futs = [(fn, c, pool.submit(fn, binary, c)) for fn, c in jobs]
        for fn, c, f in futs:
            try:
                r = f.result()
            except Exception as e:  # noqa: BLE001 - a crash of the checker is a failure too
                r = outcome(c['id'], ['checker crashed: %r' % (e,)], {'text': c.get('text')})
            for o in (r if isinstance(r, list) else [r]):
                res.add(o)

    for case, problems, details in res.failed[:a.show]:
        print('MISMATCH %s' % case)
        for p in problems[:12]:
            print('    - %s' % p)
        if len(problems) > 12:
            print('    - ... %d more' % (len(problems) - 12))
        print(fmt_details(details))
    if len(res.failed) > a.show:
        print('... %d more mismatches (use --show N)' % (len(res.failed) - a.show))
        kinds = collections.Counter()
        for case, ps, _ in res.failed:
            for p in set(re.sub(r'^(submit |deliver )?part \d+/\d+: ', r'\1', q).split(':')[0][:70] for q in ps):
                kinds[case.split('#')[0] + ' ' + p] += 1
        for k, v in kinds.most_common(15):
            print('    %4d x %s' % (v, k))
    if res.skipped:
        reasons = collections.Counter(r for _, r, _ in res.skipped)
        print('skipped (known library bugs, see LIB_BUGS):')
        for r, v in reasons.most_common():
            print('    %4d x %s' % (v, r))
    if res.bug_hits:
        print('library bugs seen (verified with the other library where possible): %s'
              % ', '.join('%s x%d' % kv for kv in sorted(res.bug_hits.items())))
    print('by check: ' + '; '.join('%s %d/%d/%d' % (g, c['pass'], c['fail'], c['skip'])
                                   for g, c in sorted(res.by_group.items())) + '  (pass/fail/skip)')
    if EXTRA_KEYS:
        print('note: JSON keys beyond the documented interface (not failed): %s'
              % ', '.join('%s x%d' % kv for kv in sorted(EXTRA_KEYS.items())))
    if a.json_report:
        with open(a.json_report, 'w') as f:
            json.dump({'failed': [{'case': c, 'problems': p, 'details': d} for c, p, d in res.failed],
                       'skipped': [{'case': c, 'reason': r} for c, r, _ in res.skipped]},
                      f, ensure_ascii=False, indent=1, default=str)
    summary = 'crosscheck: %d passed, %d failed' % (res.passed, len(res.failed))
    if res.skipped:
        summary += ', %d skipped' % len(res.skipped)
    print(summary)
    return 1 if res.failed else 0


if __name__ == '__main__':
    sys.exit(main())
