#!/usr/bin/env python3
"""Expression/event pairs for the XPath filter differential test (issue 4).

Standard library only, deterministic: the same expressions on every machine and
every Python 3 (a fixed seed, and sets are always sorted before a random choice).
tests/xpath/differential.py runs every filter below against every event, through
virevent and through libxml2 (lxml), and requires the same boolean for each pair.

What is here:
  EVENTS     the events emitted (the library adds seq and, when absent, timestamp)
  HAND       hand-written (expression, event, expected boolean) triples; the
             expectation is checked against lxml (it guards the harness), and the
             expression is run against every event like the others
  COMBINED   filters of several entries (type patterns and XPath mixed)
  REFUSED    entries that registration must refuse with VIR_ERR_INVALID_ARG
  generate() the generated expressions: a typed random grammar over the events.
             Types are tracked (node-set, number, string, boolean), so every
             expression is valid; names and literal values mostly come from one
             event's own structure, so that paths exist and comparisons can go
             either way; precedence decides parentheses, so operator chains
             appear unparenthesized too.

What the grammar leaves out on purpose, because XPath 1.0 leaves it to the
implementation or because libxml2 departs from XPath 1.0 there (the reference must
be right for the comparison to mean anything):
  - the relative order of attributes of one element: no positional predicate on an
    attribute step, and no string(), number(), name() of a node-set that may hold
    two attributes of one element (its first node is then implementation-defined);
  - number-to-string conversions of numbers that libxml2 formats otherwise than
    XPath 1.0 (it writes 15 significant digits, and exponents past 2^31 or below
    1e-5): only small exact (dyadic) numbers, NaN and the infinities are turned
    into strings; arithmetic on non-dyadic decimals never reaches string();
  - decimals with a non-zero integer part and a non-dyadic fraction in literals or
    data (libxml2 does not round them correctly, 1.469 parses as
    1.4689999999999999), and anything looking like an exponent ('1e3', which
    libxml2 accepts as a number and XPath 1.0 does not);
  - arithmetic on timestamps (non-dyadic, and stamped at emit time);
  - round() of values just under .5 (libxml2 computes floor(x + 0.5)).

    python3 tests/xpath/generate.py            # summary
    python3 tests/xpath/generate.py --list     # every generated expression
    python3 tests/xpath/generate.py --events   # the events
"""

import random
import re
import sys
import xml.etree.ElementTree as ET

SEED = 20080917
GENERATED = 3000          # how many distinct generated expressions generate() returns
MAX_LENGTH = 1500         # generated expressions stay well under the 4 KiB limit

# ---------------------------------------------------------------------------
# Events. Names are used by HAND and in reports; the order fixes each seq
# (the i-th event gets seq i + 1 + the batch's offset, 0 or 100).

EVENTS = [
    ("crash",
     '<event type="domain-state-transition" timestamp="1221756307.123456">'
     '<domain-id>3</domain-id><domain-name>web1</domain-name><old-state>running</old-state>'
     '<new-state>crashed</new-state><reason>guest panic</reason></event>'),
    ("start",   # no timestamp: the library stamps the current time
     '<event type="domain-state-transition"><domain-id>1</domain-id>'
     '<domain-name>db-primary</domain-name><old-state>shutoff</old-state>'
     '<new-state>running</new-state><reason>booted</reason></event>'),
    ("paused",  # pretty-printed: whitespace-only text nodes between the children
     '<?xml version="1.0" encoding="UTF-8"?>\n'
     '<event type="domain-state-transition" timestamp="1221756400">\n'
     '  <domain-id>12</domain-id>\n'
     '  <domain-name>web2</domain-name>\n'
     '  <old-state>running</old-state>\n'
     '  <new-state>paused</new-state>\n'
     '  <reason>suspended-paused</reason>\n'
     '</event>\n'),
    ("crash2",  # a number with spaces around it, an empty element
     '<event type="domain-state-transition" timestamp="1221756500.5">'
     '<domain-id> 4 </domain-id><domain-name>web1</domain-name><old-state>paused</old-state>'
     '<new-state>crashed</new-state><reason/></event>'),
    ("lifecycle",  # data in attributes of nested elements
     '<event type="domain-lifecycle" timestamp="1221756600.25">'
     '<domain id="5" name="web3" uuid="c7a5fdbd-edaf-9455-926a-d65c16db1809">'
     '<state old="running" new="shutoff"/><state old="shutoff" new="running"/></domain>'
     '<detail>destroyed</detail></event>'),
    ("disk",  # repeated elements with attributes, under two parents
     '<event type="disk-change" timestamp="1221756700"><domain-id>7</domain-id>'
     '<domain-name>store</domain-name><devices>'
     '<disk bus="virtio" size="10.5" dev="vda"><target dev="vda"/>'
     '<source file="/var/lib/a.img"/></disk>'
     '<disk bus="sata" size="250" dev="sda" readonly="yes"><target dev="sda"/></disk>'
     '<disk bus="virtio" size="-1" dev="vdb"/></devices>'
     '<backup><disk bus="usb" size="0.25" dev="sdb"/></backup></event>'),
    ("metrics",  # numbers: negative, decimal, padded, signed, malformed
     '<event type="metrics"><cpu>87.5</cpu><mem>-12.25</mem><swap>0</swap>'
     '<load>  3  </load><temp>-0</temp><count>007</count><ratio>.5</ratio>'
     '<bad>12abc</bad><plus>+5</plus><neg>-42</neg><dot>5.</dot>'
     '<tabbed>&#9;8&#10;</tabbed><big>123456</big></event>'),
    ("log",  # whitespace text, empty elements, a line break, a no-break space
     '<event type="log-message"><msg>  hello   world &#9; again  </msg><blank>   </blank>'
     '<empty/><empty2></empty2><multi>line1&#10;line2</multi><nbsp>a&#160;b</nbsp></event>'),
    ("audit",  # mixed content, deep nesting, one name at several depths
     '<event type="audit"><msg>user <b>root</b> logged <i>in</i> from '
     '<host ip="10.0.0.1">gw</host></msg><a><b><c><d><e depth="5">deep</e></d></c></b></a>'
     '<b>second b</b></event>'),
    ("i18n",  # non-ASCII text and names, a character outside the BMP
     '<event type="i18n"><domain-name>größe-ü</domain-name><msg>Grüße, 世界 𝄞!</msg>'
     '<größe unit="Mio">3</größe><note lang="fr">café crème</note></event>'),
    ("net",
     '<event type="net-change" timestamp="1221756800.75">'
     '<nic mac="52:54:00:aa:bb:cc" model="virtio" index="0" up="true"/>'
     '<nic mac="52:54:00:dd:ee:ff" model="e1000" index="1" up="false"/>'
     '<nic model="virtio" index="2"/><link state="down" speed="1000"/></event>'),
    ("ops",  # elements named like operators, node types and functions
     '<event type="ops"><div>6</div><mod>4</mod><and>1</and><or/><text>t</text>'
     '<node>n</node><count>2</count><div><mod>3</mod></div><comment>c</comment>'
     '<v.1_a-b>9</v.1_a-b><_u>x</_u></event>'),
    ("empty",
     '<event type="empty"/>'),
    ("quote",  # quotes, escaped markup, CDATA
     '<event type="quote" note=\'He said "hi"\' apos="it\'s">'
     '<q>it\'s "quoted" &amp; &lt;escaped&gt;</q><cdata><![CDATA[a<b & c]]></cdata></event>'),
    ("bulk",  # many repeated elements, at two levels
     '<event type="bulk" timestamp="1221756900"><item n="1">alpha</item><item n="2">beta</item>'
     '<item n="3" flag="">gamma</item><item n="10">delta</item><item n="-2.5">epsilon</item>'
     '<group><item n="4">zeta</item><item n="5"/></group></event>'),
    ("escapes",  # tab, CR and LF in attributes and text: the canonical form keeps them
     '<event type="escapes" tab="a&#9;b" cr="x&#13;y" nl="p&#10;q" sp="  padded  ">'
     '<t>tab&#9;here</t><r>cr&#13;here</r><s> </s></event>'),
    ("multi-id",  # one name twice, negative and decimal, a name that is a number
     '<event type="domain-state-transition" timestamp="1221757000.125"><domain-id>-3</domain-id>'
     '<domain-name>10</domain-name><old-state>crashed</old-state><new-state>shutoff</new-state>'
     '<reason>destroyed</reason><domain-id>2.5</domain-id></event>'),
]

EVENT_NAMES = [name for name, _ in EVENTS]

# ---------------------------------------------------------------------------
# Hand-written: (expression, event, expected boolean on that event in the batch
# without seq offset, i.e. seq = position in EVENTS + 1). Every one runs against
# every event as well.

HAND = [
    # The examples of docs/api.md and issue 4
    ("/event[new-state='crashed']", "crash", True),
    ("/event[new-state='crashed']", "paused", False),
    ("//domain-name = 'web1'", "crash", True),
    ("//domain-name = 'web1'", "start", False),
    ("count(//disk) > 1", "disk", True),
    ("count(//disk) > 1", "crash", False),
    ("/event/@seq > 100", "crash", False),
    ("/event/@seq > 5", "bulk", True),
    ("/event/@seq = 13", "empty", True),
    ("/event[@type='domain-state-transition' and domain-id > 2]", "crash", True),
    ("/event[@type='domain-state-transition' and domain-id > 2]", "start", False),
    ("/event[@type='domain-state-transition' and domain-id > 2]", "crash2", True),
    ("/event[@type='domain-state-transition' and domain-id > 2]", "multi-id", True),
    ("count(/event/*) > 3", "crash", True),
    ("count(/event/*) > 3", "lifecycle", False),
    # Filters that fix the type, and those that only seem to (the type index)
    ("/event[@type='domain-state-transition' or true()]", "empty", True),
    ("/event[@type='disk-change'] | /event[@type='metrics']", "metrics", True),
    ("/event[@type!='domain-state-transition']", "empty", True),
    ("/event[not(@type='domain-state-transition')]", "crash", False),
    ("/event[@type='domain-state-transition' and @type='disk-change']", "crash", False),
    ("/*[@type='audit']", "audit", True),
    ("event[@type='audit']", "audit", True),
    ("self::node()/event[@type='ops']", "ops", True),
    ("/event[@type='Domain-State-Transition']", "crash", False),
    ("/event[@type=concat('disk', '-change')]", "disk", True),
    ("/event[@type='disk-change']/..", "disk", True),
    ("/event[@type='metrics'][cpu > 80]", "metrics", True),
    ("/event[@type='metrics' and cpu > 90]", "metrics", False),
    ("/event[@type='domain-state-transition'] and //reason = ''", "crash2", True),
    ("//@type = 'i18n'", "i18n", True),
    ("/event/@type = 'ops' or //div", "ops", True),
    ("/event[@type = 'domain-state-transition'][new-state = 'crashed'][domain-id = 4]", "crash2", True),
    ("/event/@type = 'domain-state-transition'", "crash", True),
    ('/event[@type="ops"]', "ops", True),
    ("/event[@type='ops' or @type='quote']", "quote", True),
    ("/event[@type='ops']/div | /event[@type='quote']/q", "quote", True),
    ("/event[./@type='ops']", "ops", True),
    ("/event[@type='ops' and false()] or /event[@type='quote']", "quote", True),
    ("/event['ops'=@type]", "ops", True),
    ("/event[@type='ops'][1]", "ops", True),
    ("/event[1][@type='ops']", "ops", True),
    ("event[1][@type='ops']", "ops", True),
    ("//event[@type='ops']", "ops", True),
    ("/event[@type='ops'][div = 7]", "ops", False),
    ("/event[@type='ops']/@type/..", "ops", True),
    ("/event[@type=//and + 'x']", "ops", False),
    ("/event[@type = 'ops' or @type = 'ops ']", "ops", True),
    ("/event[@type != 'ops' and @type != 'quote']", "quote", False),
    ("/ event / @ type = 'ops'", "ops", True),
    ("child :: event [ @type = 'ops' ]", "ops", True),
    ("count ( //div ) = 2", "ops", True),
    # Comparisons with node-sets: existential, numbers, strings, booleans
    ("/event/domain-id = 3", "crash", True),
    ("/event/domain-id = '3'", "crash", True),
    ("/event/domain-id = 4", "crash2", True),
    ("/event/domain-id = '4'", "crash2", False),
    ("//domain-id = 2.5", "multi-id", True),
    ("//domain-id < 0", "multi-id", True),
    ("//domain-id > 2 and //domain-id < 0", "multi-id", True),
    ("not(//domain-id != //domain-id)", "multi-id", False),
    ("//domain-id != //domain-id", "crash", False),
    ("//domain-name = 10", "multi-id", True),
    ("//nothing = //nothing", "crash", False),
    ("//nothing != //nothing", "crash", False),
    ("//nothing = false()", "crash", True),
    ("//nothing != 1", "crash", False),
    ("not(//nothing)", "crash", True),
    ("//old-state = //new-state", "crash", False),
    ("//state/@old = //state/@new", "lifecycle", True),
    ("//reason = ''", "crash2", True),
    ("boolean(//reason)", "crash2", True),
    ("//domain-id > //domain-name", "crash", False),
    ("//domain-id <= //domain-id", "crash", True),
    ("number(//domain-name) != number(//domain-name)", "crash", True),
    ("sum(/event/*) != sum(/event/*)", "crash", True),
    ("sum(//domain-id) = 3", "crash", True),
    # Paths, axes, predicates, positions
    ("count(descendant::*) = 6", "crash", True),
    ("count(descendant-or-self::node()) = 12", "crash", True),
    ("count(//.) = 12", "crash", True),
    ("count(/event/attribute::*) = 3", "crash", True),
    ("count(child::*) = 1", "metrics", True),
    ("/child::event/child::domain-name/self::domain-name = 'web1'", "crash", True),
    ("//domain-name[. = 'web1']/parent::event/attribute::type = 'domain-state-transition'", "crash", True),
    ("//text()[. = 'web1']", "crash", True),
    ("//domain-name/text() = 'web1'", "crash", True),
    ("/event/*[2] = 'web1'", "crash", True),
    ("/event/*[position() = last()] = 'guest panic'", "crash", True),
    ("/event/*[last()][contains(., ' ')]", "crash", True),
    ("boolean(/event/*[10])", "crash", False),
    ("/event/*[1.5]", "crash", False),
    ("/event/*[number('2')] = 'web1'", "crash", True),
    ("count(/event/*[//domain-id]) = 5", "crash", True),
    ("count(/event/*[-(-2)]) = 1", "crash", True),
    ("/event/*[position() > 1][1] = 'web1'", "crash", True),
    ("count(//domain-id/.. | /event) = 1", "crash", True),
    ("count(/ | /event | //node()) = 12", "crash", True),
    ("(/event/*)[3] = 'running'", "crash", True),
    ("(//domain-name | //domain-id)[1] = 3", "crash", True),
    ("count(/event/node()) = 11", "paused", True),
    ("count(/event/text()) = 6", "paused", True),
    ("/event/text()[1] = /event/text()[5] and /event/text()[1] != /event/text()[6]", "paused", True),
    ("count(//*[text()]) = 5", "crash", True),
    ("//disk[1]/@dev = 'sdb'", "disk", True),
    ("(//disk)[1]/@dev = 'sdb'", "disk", False),
    ("(//disk)[last()]/@dev = 'sdb'", "disk", True),
    ("//devices/disk[last()]/@size < 0", "disk", True),
    ("sum(//disk/@size) = 259.75", "disk", True),
    ("//disk[@bus='virtio'][2]/@dev = 'vdb'", "disk", True),
    ("//disk[2][@bus='virtio']", "disk", False),
    ("//disk[target/@dev = 'sda']/@readonly = 'yes'", "disk", True),
    ("count(//disk[@readonly]) = 1", "disk", True),
    ("//disk[not(target)]/@dev = 'vdb'", "disk", True),
    ("count(//disk | //disk/target) = 6", "disk", True),
    ("count(//disk/@* | //disk/@bus) = 13", "disk", True),
    ("//target/../@size = 250", "disk", True),
    ("//source/parent::disk/@dev = 'vda'", "disk", True),
    ("/descendant::disk[3]/@dev = 'vdb'", "disk", True),
    ("//disk[position() = last() - 1]/@dev = 'sda'", "disk", True),
    ("/event/devices/disk[@size > 5 and @size < 100]/@dev = 'vda'", "disk", True),
    ("//*[@size = -1]", "disk", True),
    ("//disk[position() = last()]/@dev = 'sdb'", "disk", True),
    ("//disk[@dev][@bus = 'usb']", "disk", True),
    ("//disk[@bus = 'virtio' and @size > 0]/target/@dev = 'vda'", "disk", True),
    ("//devices[disk[3]]", "disk", True),
    ("//backup[disk[2]]", "disk", False),
    ("count(//disk/@dev/..) = 4", "disk", True),
    ("//@dev[. = 'vdb']/../@size = -1", "disk", True),
    ("//@*[name() = 'readonly'] = 'yes'", "disk", True),
    ("local-name(//@readonly) = 'readonly'", "disk", True),
    ("name(//disk/@readonly/..) = 'disk'", "disk", True),
    ("count(//disk/*/..) = 2", "disk", True),
    ("//disk[.//@dev = 'vda']/@size = 10.5", "disk", True),
    ("//*[not(node())]", "log", True),
    ("count(//*[not(node())]) = 2", "log", True),
    ("/event/node()[1][self::msg]", "log", True),
    ("//msg/node()[last()][self::host]", "audit", True),
    ("//msg/text()[2] = ' logged '", "audit", True),
    ("string(//msg/text()[last()]) = ' from '", "audit", True),
    ("//a//e = 'deep' and //a/descendant::e/@depth = 5", "audit", True),
    ("//b[c] and //b[not(c)]", "audit", True),
    ("count(//b/..) = 3", "audit", True),
    ("count(//c/descendant-or-self::*) = 3", "audit", True),
    ("//e/self::e = 'deep' and not(//e/self::d)", "audit", True),
    ("count(//e/../../../..) = 1", "audit", True),
    ("name(//e/../..) = 'c'", "audit", True),
    ("//host[@ip='10.0.0.1'] = 'gw'", "audit", True),
    ("string(//host/@ip) = '10.0.0.1' and number(//host/@ip) != number(//host/@ip)", "audit", True),
    ("string(//msg) = 'user root logged in from gw'", "audit", True),
    ("count(//msg/text()) = 3", "audit", True),
    ("//msg/b = 'root'", "audit", True),
    ("count(//b) = 3", "audit", True),
    ("//state[@old = 'running']/@new = 'shutoff'", "lifecycle", True),
    ("//domain/@name = 'web3' and //state[2]/@new = 'running'", "lifecycle", True),
    ("count(//state/@*) = 4", "lifecycle", True),
    ("/event[@type='domain-lifecycle']/domain/@id = 5", "lifecycle", True),
    ("//nic[@up='true']/@model = 'virtio'", "net", True),
    ("count(//nic[@mac]) = 2", "net", True),
    ("//nic[not(@up)]/@index = 2", "net", True),
    ("sum(//nic/@index) = 3", "net", True),
    ("//link/@speed div 10 = 100", "net", True),
    ("//item[@n > 2][1] = 'gamma'", "bulk", True),
    ("//item[last()] = ''", "bulk", True),
    ("(//item)[last()]/@n = 5", "bulk", True),
    ("count(//item[@flag]) = 1 and //item[@flag = '']", "bulk", True),
    ("//item[@n = 10] = 'delta'", "bulk", True),
    ("//item[@n < 0] = 'epsilon'", "bulk", True),
    ("//item[3] = 'gamma'", "bulk", True),
    ("//item[. = 'beta']/@n = 2", "bulk", True),
    ("//group/item[position() = 2]/@n = 5", "bulk", True),
    ("//item[position() mod 2 = 0][2] = 'delta'", "bulk", True),
    ("//item[position() < 3][last()] = 'beta'", "bulk", True),
    ("count(//item[position() = 1 or position() = last()]) = 4", "bulk", True),
    # Names that are operators, node types or functions
    ("//div div //mod = 1.5", "ops", True),
    ("count(//div) = 2 and count(//mod) = 2", "ops", True),
    ("//and and //or", "ops", True),
    ("//text = 't' and //node = 'n'", "ops", True),
    ("count(//text()) = 10", "ops", True),
    ("count(//node) = 1 and count(//node()) = 23", "ops", True),
    ("//v.1_a-b = 9 and //_u = 'x' and name(//_u/..) = 'event'", "ops", True),
    ("//v.1_a-b-1", "ops", False),
    ("//v.1_a-b - 1 = 8", "ops", True),
    ("/event/div[mod] = 3", "ops", True),
    ("//count = 2 and count(//count) = 1", "ops", True),
    ("//comment = 'c'", "ops", True),
    ("count(*) * 2 = 2", "ops", True),
    ("(1)div(2) = 0.5", "ops", True),
    ("//div[mod]/mod mod 2 = 1", "ops", True),
    # Numbers
    ("//load = 3", "metrics", True),
    ("//temp = 0", "metrics", True),
    ("//count = 7", "metrics", True),
    ("//ratio * 2 = 1", "metrics", True),
    ("//bad > 0 or //bad <= 0", "metrics", False),
    ("//plus = 5", "metrics", False),
    ("//dot = 5", "metrics", True),
    ("//tabbed = 8", "metrics", True),
    ("//cpu + //mem = 75.25", "metrics", True),
    ("-//mem = 12.25", "metrics", True),
    ("//neg mod 5 = -2", "metrics", True),
    ("floor(//cpu) = 87 and ceiling(//mem) = -12 and round(//mem) = -12", "metrics", True),
    ("string(//big * 2) = '246912'", "metrics", True),
    ("string(//cpu div 2) = '43.75'", "metrics", True),
    ("round(-2.5) = -2", "empty", True),
    ("round(2.5) = 3", "empty", True),
    ("1 div 0 > 1000000", "empty", True),
    ("string(1 div 0) = 'Infinity'", "empty", True),
    ("string(-1 div 0) = '-Infinity'", "empty", True),
    ("string(0 div 0) = 'NaN'", "empty", True),
    ("0 div 0 = 0 div 0", "empty", False),
    ("0 div 0 != 0 div 0", "empty", True),
    ("0.1 + 0.2 = 0.3", "empty", False),
    ("0.5 + 0.25 = 0.75", "empty", True),
    ("string(-0) = '0'", "empty", True),
    ("1 div -0 < 0", "empty", True),
    # signed zero (XPath 1.0 section 4.4: round gives -0 from [-0.5, -0])
    ("1 div sum(//nothing) > 0", "crash", True),
    ("1 div round(-0.25) < 0", "empty", True),
    ("1 div round(-0.5) < 0 and round(-0.5) = 0", "empty", True),
    ("1 div round(-0) < 0", "empty", True),
    ("1 div ceiling(-0.5) < 0", "empty", True),
    ("1 div floor(-0) < 0", "empty", True),
    ("1 div (-0 mod 5) < 0", "empty", True),
    ("1 div //temp < 0", "metrics", True),
    ("1 div -//swap < 0", "metrics", True),
    ("string(5 mod 0) = 'NaN' and 5.5 mod -2 = 1.5", "empty", True),
    ("5 mod -3 = 2 and -5 mod 3 = -2 and 5.5 mod 2 = 1.5", "empty", True),
    ("1 < 2 < 3", "empty", True),
    ("3 > 2 > 1", "empty", False),
    ("1 + 2 * 3 = 7", "empty", True),
    ("10 - 4 - 3 = 3 and 12 div 3 div 2 = 2", "empty", True),
    ("--1 = 1", "empty", True),
    ("1 - -1 = 2", "empty", True),
    ("2-1 = 1", "empty", True),
    ("string(.5) = '0.5' and 5. = 5", "empty", True),
    ("true() = 'false'", "empty", True),
    ("false() = ''", "empty", True),
    ("true() > false() and true() = 1", "empty", True),
    ("'10' < '9'", "empty", False),
    ("'abc' = 'abc '", "empty", False),
    ("string(number('  12  ')) = '12'", "empty", True),
    ("number('-.5') = -0.5 and number('5.') = 5 and number('+5') != number('+5')", "empty", True),
    ("string(true()) = 'true' and string(1 = 2) = 'false'", "empty", True),
    ("boolean('false') and not('')", "empty", True),
    ("boolean(0) or boolean(0 div 0)", "empty", False),
    ("string(0.5) = '0.5' and string(-12.75) = '-12.75' and string(100) = '100'", "empty", True),
    ("string(2.50) = '2.5'", "empty", True),
    ("last() = 1 and position() = 1", "empty", True),
    ("name() = '' and local-name() = '' and local-name(/*) = 'event'", "empty", True),
    ("/event[not(*)] and count(/event/@*) = 3", "empty", True),
    ("/event/@timestamp > 1221756307 and /event/@timestamp < 1221756308", "crash", True),
    ("/event/@timestamp = 1221756500.5", "crash2", True),
    ("/event/@timestamp > 1221757000", "start", True),
    # Strings
    ("normalize-space(//msg) = 'hello world again'", "log", True),
    ("normalize-space(//blank) = ''", "log", True),
    ("//blank = '   '", "log", True),
    ("string-length(//blank) = 3", "log", True),
    ("//empty = '' and //empty2 = ''", "log", True),
    ("boolean(//empty)", "log", True),
    ("substring-before(//multi, 'line2') != 'line1'", "log", True),
    ("string-length(//multi) = 11", "log", True),
    ("normalize-space(//multi) = 'line1 line2'", "log", True),
    ("normalize-space(//nbsp) = //nbsp", "log", True),
    ("translate(normalize-space(//msg), ' ', '-') = 'hello-world-again'", "log", True),
    ("string-length(//msg) = 12", "i18n", True),
    ("//größe = 3 and //größe/@unit = 'Mio'", "i18n", True),
    ("contains(//note, 'crème')", "i18n", True),
    ("translate(//domain-name, 'öü', 'ou') = 'große-u'", "i18n", True),
    ("substring(//msg, 8, 2) = '世界'", "i18n", True),
    ("substring(//msg, 11) = '𝄞!'", "i18n", True),
    ("/event/@apos = \"it's\"", "quote", True),
    ("/event/@note = 'He said \"hi\"'", "quote", True),
    ("contains(//q, '&') and contains(//q, '<escaped>')", "quote", True),
    ("//cdata = 'a<b & c'", "quote", True),
    ("contains(/event/@nl, 'p') and string-length(/event/@nl) = 3", "escapes", True),
    ("normalize-space(/event/@cr) = 'x y'", "escapes", True),
    ("normalize-space(/event/@sp) = 'padded' and string-length(/event/@sp) = 10", "escapes", True),
    ("string-length(translate(//t, 'abehrt', '')) = 1", "escapes", True),
    ("//s = ' ' and normalize-space(//s) = ''", "escapes", True),
    ("normalize-space(//r) = 'cr here'", "escapes", True),
    ("starts-with(//domain/@uuid, 'c7a5')", "lifecycle", True),
    ("substring-after(//domain/@uuid, '-') = 'edaf-9455-926a-d65c16db1809'", "lifecycle", True),
    ("substring-before(//domain/@uuid, '-') = 'c7a5fdbd'", "lifecycle", True),
    ("substring('12345', 1.5, 2.6) = '234'", "empty", True),
    ("substring('12345', 0, 3) = '12'", "empty", True),
    ("substring('12345', 0 div 0, 3) = ''", "empty", True),
    ("substring('12345', 1, 0 div 0) = ''", "empty", True),
    ("substring('12345', -42, 1 div 0) = '12345'", "empty", True),
    ("substring('12345', -1 div 0, 1 div 0) = ''", "empty", True),
    ("substring('12345', 2) = '2345' and substring('12345', 1.5) = '2345'", "empty", True),
    ("substring-after('abc', '') = 'abc' and substring-before('abc', '') = ''", "empty", True),
    ("contains('abc', '') and starts-with('abc', '')", "empty", True),
    ("translate('bar', 'abc', 'ABC') = 'BAr' and translate('--aaa--', 'abc-', 'ABC') = 'AAA'", "empty", True),
    ("translate('aba', 'aa', 'xy') = 'xbx'", "empty", True),
    ("concat(1, 2) = '12' and concat(true(), 3, 'x') = 'true3x'", "empty", True),
    ("concat(//domain-name, ':', //new-state) = 'web1:crashed'", "crash", True),
    ("string(/event/new-state) = 'crashed' and string-length(/event/reason) = 11", "crash", True),
    ("string-length() > 0 and string-length(string()) = string-length(.)", "crash", True),
    ("normalize-space() = 'web2 running paused suspended-paused'", "paused", False),
    ("starts-with(normalize-space(), '12 web2')", "paused", True),
    ("count(//*[starts-with(name(), 'domain')]) = 2", "crash", True),
    ("//*[. = 'crashed']", "crash", True),
]

# Filters of more than one entry: any entry matching is enough. Type patterns
# and XPath expressions mixed.
COMBINED = [
    (("domain-*", "count(//disk) > 2"), "disk", True),
    (("domain-*", "count(//disk) > 2"), "crash", True),
    (("domain-*", "count(//disk) > 2"), "metrics", False),
    (("metrics", "//nic"), "net", True),
    (("metrics", "//nic"), "audit", False),
    (("/event[@type='ops']", "/event[@type='quote']"), "quote", True),
    (("*-change", "//cpu > 90"), "net", True),
    (("*-change", "//cpu > 90"), "metrics", False),
    (("/event[@type='empty']", "i18n", "//item"), "bulk", True),
    (("nothing-*", "//nothing", "/event[@type='nothing']"), "crash", False),
]

# Entries that registration must refuse (-1, VIR_ERR_INVALID_ARG): syntax errors,
# XPath outside the subset of issue 4, and the limits. Not counted as pairs.
REFUSED = [
    "/event[",
    "count(//disk",
    "//disk[@size > ]",
    "/event/@",
    "1 = = 2",
    "'unterminated",
    "//",
    "/event]",
    "1 +",
    "()",
    "foo(1)",
    "1e3 > 2",                       # no exponents in XPath 1.0 (libxml2 takes them)
    "//x:y",                         # a prefix without a namespace binding
    "lang('en')",                    # XPath 1.0 functions outside the subset
    "id('x')",
    "string-length(1, 2)",           # arity
    "concat('a')",
    "not()",
    "true(1)",
    "//disk/following-sibling::*",   # axes outside the subset
    "//disk/ancestor::event",
    "//disk/preceding::*",
    "//namespace::*",
    "//comment()",                   # node types outside the subset
    "//processing-instruction()",
    "$x = 1",                        # variables
    ".[1]",                          # no predicate on an abbreviated step
    "..[1]",
    "'" + "x" * 5000 + "' = 'x'",    # longer than 4 KiB
    "(" * 2000 + "1" + ")" * 2000,   # nesting within 4 KiB
    "/*" + "[*" * 1300 + "]" * 1300,
]

# ---------------------------------------------------------------------------
# What the type pattern rule (docs/api.md section 3) takes as a type pattern: such
# an entry is no XPath, so a generated expression must not look like one.

_TYPE_PATTERN = re.compile(r"[\w.:*-]+")


def is_type_pattern(entry):
    return _TYPE_PATTERN.fullmatch(entry) is not None


def type_pattern_matches(pattern, event_type):
    """The reference for type patterns: '*' matches any run of characters."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, event_type, re.S) is not None


# ---------------------------------------------------------------------------
# The shape of the events, for the grammar: which names occur below which.

_XPATH_SPACE = " \t\r\n"
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def xpath_number(text):
    """XPath 1.0 number(string); None for NaN."""
    text = text.strip(_XPATH_SPACE)
    return float(text) if _NUMBER.fullmatch(text) else None


def _exact(value):
    """Exact in binary with at most 3 fractional bits, and small: such numbers
    format the same in libxml2 as in XPath 1.0 after +, -, mod and small products."""
    return value * 8 == int(value * 8) and abs(value) < 1e6


class Schema:
    """Which names occur below which, and the values they hold, over all events."""

    def __init__(self, events):
        self.children = {"/": {"event"}}   # element name ("/": the document) -> child names
        self.attrs = {}                    # element name -> attribute names
        self.parents = {}                  # element name -> parent names ("/" for event)
        self.attr_owners = {}              # attribute name -> element names
        self.elem_values = {}              # element name -> string values
        self.attr_values = {}              # attribute name -> values
        self.text_values = {}              # element name -> values of its text children
        for name, xml in events:
            root = ET.fromstring(xml.encode())
            root.set("seq", "1")
            root.set("timestamp", "1221756307.123456")
            self._walk(root, "/", name)
        self.elements = sorted(set(self.children) - {"/"})
        self.all_attrs = sorted(self.attr_owners)
        self.descendants = {name: self._descendants(name) for name in self.children}

    def _walk(self, element, parent, event):
        name = element.tag
        self.children.setdefault(parent, set()).add(name)
        self.children.setdefault(name, set())
        self.parents.setdefault(name, set()).add(parent)
        self.attrs.setdefault(name, set()).update(element.attrib)
        for attr, value in element.attrib.items():
            self.attr_owners.setdefault(attr, set()).add(name)
            self.attr_values.setdefault(attr, set()).add(value)
            if attr != "timestamp":
                self._check_number(value, f"{event}: @{attr}")
        string_value = "".join(element.itertext())
        self.elem_values.setdefault(name, set()).add(string_value)
        self._check_number(string_value, f"{event}: <{name}>")
        texts = [element.text] + [child.tail for child in element]
        for text in texts:
            if text:
                self.text_values.setdefault(name, set()).add(text)
                self._check_number(text, f"{event}: text in <{name}>")
        for child in element:
            self._walk(child, name, event)

    @staticmethod
    def _check_number(text, where):
        value = xpath_number(text)
        assert value is None or _exact(value), \
            f"{where}: {text!r} is a number that string() may not format alike in libxml2"

    def _descendants(self, name):
        seen, todo = set(), [name]
        while todo:
            for child in self.children.get(todo.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        return seen

    def values(self, kind, names):
        """The string values nodes of `kind` named `names` may have."""
        table = {"attr": self.attr_values, "text": self.text_values}.get(kind, self.elem_values)
        return {v for n in names for v in table.get(n, ())}


# ---------------------------------------------------------------------------
# The grammar. Each generator returns an Expr: the text, its precedence (for
# parenthesization) and, for node-sets, what is known of the nodes.

# Precedence levels, loosest first.
OR, AND, EQUALITY, RELATIONAL, ADDITIVE, MULTIPLICATIVE, UNARY, UNION, PATH = range(9)
BARE_ROOT = -1   # '/' alone: always parenthesized as an operand ('/ * 2' is '/*' then '2')


class Expr:
    def __init__(self, text, prec, **info):
        self.text = text
        self.prec = prec
        # node-sets: kind ('elem', 'attr', 'text', 'node', 'root'); names (element
        # names for 'elem' and 'node', attribute names for 'attr', parent element
        # names for 'text'); attr_multi (two attributes of one element may be in
        # it); attrs (may hold attributes); ts (may hold timestamps)
        self.kind = info.get("kind")
        self.names = info.get("names", set())
        self.attr_multi = info.get("attr_multi", False)
        self.attrs = info.get("attrs", False)
        self.ts = info.get("ts", False)

    @property
    def order_safe(self):
        """Its first node in document order is the same in every implementation."""
        return not self.attr_multi

    @property
    def number_safe(self):
        """number() of its first node, or its sum, is an exact small number or NaN."""
        return not self.attr_multi and not self.ts


NUMERIC_STRINGS = ["12", " 3.5 ", "-.5", "5.", "+5", "abc", "", "0", "-0", "7.25", " - 1", "1 2",
                   "NaN", "Infinity", "0x10", ".125"]
EXTRA_STRINGS = ["", " ", "web", "crash", "e", "é", "世界", "true", "false", "-", "  a  b  ",
                 "it's", 'say "hi"', "virtio", "vd", "ab", "ba", "1", "2", "10", "0.25", "-1"]
DYADIC = ["0.5", "0.25", "0.75", "1.5", "2.5", "10.5", "0.125", "87.5", "12.25", ".5", "5."]
NON_DYADIC = ["0.1", "0.2", "0.3", "0.7"]  # integer part 0: libxml2 parses them exactly


class Generator:
    def __init__(self, seed=SEED, events=EVENTS):
        self.r = random.Random(seed)
        # Each expression draws its names and values from one event (most often)
        # or from all of them: a path then exists in at least one event.
        self.everything = Schema(events)
        self.per_event = [Schema([event]) for event in events]
        self.s = self.everything
        s = self.everything
        texts = s.values("elem", s.elements) | s.values("attr", s.all_attrs)
        self.strings = sorted(set(t for t in texts if len(t) <= 30 and not ("'" in t and '"' in t))
                              | set(EXTRA_STRINGS) | set(NUMERIC_STRINGS))

    # -- helpers ------------------------------------------------------------

    def chance(self, p):
        return self.r.random() < p

    def pick(self, items):
        items = sorted(items) if isinstance(items, (set, frozenset)) else list(items)
        return items[self.r.randrange(len(items))]

    def weighted(self, options):
        """options: [(weight, value)]"""
        total = sum(w for w, _ in options)
        x = self.r.random() * total
        for w, v in options:
            x -= w
            if x < 0:
                return v
        return options[-1][1]

    @staticmethod
    def wrap(e, level):
        return e.text if e.prec >= level else f"({e.text})"

    def paren(self, e):
        """Sometimes redundant parentheses around a whole expression."""
        if self.chance(0.06):
            return Expr(f"({e.text})", PATH, kind=e.kind, names=e.names,
                        attr_multi=e.attr_multi, attrs=e.attrs, ts=e.ts)
        return e

    def binary(self, left, op, right, level, compact_ok=True):
        lt, rt = self.wrap(left, level), self.wrap(right, level + 1)
        compact = (compact_ok and op in ("+", "-", "*", "=", "!=", "<", "<=", ">", ">=", "|")
                   and self.chance(0.15)
                   and re.search(r"[0-9)\]'\"]$", lt) and re.match(r"[0-9('\"/-]", rt)
                   and not (op == "-" and re.search(r"[0-9]$", lt) and not re.fullmatch(r"[0-9.]+", lt))
                   and not (op in ("<", ">", "!") and rt.startswith("=")))
        sep = "" if compact else " "
        return f"{lt}{sep}{op}{sep}{rt}"

    def literal(self, value):
        quote = '"' if "'" in value else "'"
        return Expr(f"{quote}{value}{quote}", PATH)

    def call(self, name, *args):
        space = " " if self.chance(0.03) else ""
        comma = ", " if self.chance(0.8) else ","
        return f"{name}{space}({comma.join(a.text for a in args)})"

    # -- node-sets ------------------------------------------------------------
    #
    # A node-set Expr has a kind and names: 'elem' and 'node': element names;
    # 'attr': attribute names; 'text': the names of the parent elements; 'root':
    # the document. A context ctx is None at the top (the document node) or
    # (kind, names) for the nodes a predicate runs on.

    def name_test(self, candidates):
        """(text, names): a name among candidates, '*', or now and then any name."""
        candidates = sorted(candidates)
        roll = self.r.random()
        if not candidates or roll < 0.04:
            name = self.pick(self.s.elements + ["nothing"])
            return name, {name}
        if roll < 0.14:
            return "*", set(candidates)
        name = self.pick(candidates)
        return name, {name}

    def children_of(self, names):
        return {c for n in names for c in self.s.children.get(n, ())}

    def descendants_of(self, names):
        return {c for n in names for c in self.s.descendants.get(n, ())}

    def attrs_of(self, names):
        return {a for n in names for a in self.s.attrs.get(n, ())}

    def parents_of(self, names):
        return {p for n in names for p in self.s.parents.get(n, ())} - {"/"}

    def owners_of(self, attr_names):
        return {o for a in attr_names for o in self.s.attr_owners.get(a, ())}

    def parent_names(self, kind, names):
        """Element names of the parents of nodes of kind/names."""
        if kind == "attr":
            return self.owners_of(names)
        if kind == "text":
            return set(names)
        return self.parents_of(names)

    def predicate(self, d, names, kind):
        """A predicate for a step whose nodes are `names` of `kind`. No positional
        predicate on attributes: their order is implementation-defined."""
        ctx = (kind, names)
        d1 = max(d - 1, 0)
        if kind != "attr" and self.chance(0.3):
            roll = self.r.random()
            if roll < 0.45:
                text = self.pick(["1", "1", "1", "2", "2", "3", "4"])
            elif roll < 0.6:
                text = self.pick(["last()", "last()", "last() - 1", "last()-1", "1.5", "0"])
            elif roll < 0.8:
                text = self.pick(["position() = 1", "position() > 1", "position() = last()",
                                  "position() mod 2 = 0", "position() != 2", "position() < last()",
                                  "position() >= 2 and position() <= 3", "not(position() = 1)"])
            else:
                text = self.num(d1, ctx).text
        else:
            text = self.bool_(d1, ctx).text
        return f" [{text}]" if self.chance(0.03) else f"[{text}]"

    def steps(self, d, names, kind, max_steps):
        """Steps after a path reaching `names` of `kind`. Returns (text, names, kind,
        attr_multi, attrs, ts) for the whole path."""
        text, attr_multi, attrs, ts = "", False, kind == "attr", False
        for _ in range(self.r.randint(0, max_steps)):
            if kind == "root":
                break
            if kind in ("attr", "text"):
                step = self.pick(["..", "parent::*", "parent::node()", "self::node()", "."])
                text += "/" + step
                if step not in ("self::node()", "."):
                    names = self.parent_names(kind, names)
                    kind, attr_multi, attrs, ts = "elem", False, False, False
                continue
            step, names, kind, attr_multi, attrs, ts = self.step(d, names)
            text += step
        return text, names, kind, attr_multi, attrs, ts

    def step(self, d, names):
        """One step (with its '/' or '//') from elements `names`. Returns (text,
        names, kind, attr_multi, attrs, ts)."""
        has_children = bool(self.children_of(names))
        has_attrs = bool(self.attrs_of(names))
        what = self.weighted([(6 if has_children else 0.2, "child"),
                              (2 if has_children else 0.1, "descendant"),
                              (3 if has_attrs else 0.2, "attribute"), (1, "text"),
                              (0.6 if has_children else 0.1, "node"), (0.8, "parent"),
                              (0.4, "self")])
        if what == "attribute":
            sep = "//" if self.chance(0.12) else "/"
            owners = names | self.descendants_of(names) if sep == "//" else names
            attributes = self.attrs_of(owners)
            roll = self.r.random()
            multi = False
            if roll < 0.8 and attributes:
                name = self.pick(attributes)
                new = {name}
            elif roll < 0.87 or not attributes:
                name = self.pick(self.s.all_attrs + ["nothing"])
                new = {name}
            else:
                name, multi, new = self.pick(["*", "*", "node()"]), True, attributes
            axis = "attribute::" if self.chance(0.15) or name == "node()" else "@"
            text = f"{sep}{axis}{name}"
            if self.chance(0.15):
                text += self.predicate(d, new, "attr")
            return text, new, "attr", multi, True, "timestamp" in new
        if what == "text":
            sep = "//" if self.chance(0.3) else "/"
            owners = names | self.descendants_of(names) if sep == "//" else names
            text = sep + ("child::" if self.chance(0.1) else "") + "text()"
            if self.chance(0.2):
                text += self.predicate(d, owners, "text")
            return text, owners, "text", False, False, False
        if what == "parent":
            parents = self.parents_of(names)
            if self.chance(0.6):
                return "/..", parents, "elem", False, False, False
            name, new = self.name_test(parents)
            return f"/parent::{name}", new, "elem", False, False, False
        if what == "self":
            if self.chance(0.5):
                return "/.", names, "elem", False, False, False
            name, new = self.name_test(names)
            return f"/self::{name}", new, "elem", False, False, False
        if what == "child":
            name, new = self.name_test(self.children_of(names))
            text = "/" + ("child::" if self.chance(0.15) else "") + name
            kind = "elem"
        elif what == "descendant":
            name, new = self.name_test(self.descendants_of(names))
            sep = self.weighted([(6, "//"), (1, "/descendant::"), (1, "/descendant-or-self::")])
            if sep == "/descendant-or-self::":
                new = new | (names if name == "*" else names & {name})
            text = sep + name
            kind = "elem"
        else:
            text = "/node()" if self.chance(0.8) else "/child::node()"
            new, kind = self.children_of(names), "node"
        if self.chance(0.25):
            text += self.predicate(d, new, kind)
            if self.chance(0.15):
                text += self.predicate(d, new, kind)
        return text, new, kind, False, False, False

    def abs_path(self, d):
        start = self.weighted([(4, "/event"), (5, "//"), (0.7, "/*"), (0.7, "/descendant::"),
                               (0.2, "/"), (0.8, "event"), (0.3, "/descendant-or-self::node()"),
                               (0.3, "//*"), (0.2, "//node()"), (1, "//@"), (0.3, "//text()")])
        everything = set(self.s.elements)
        if start == "/":
            return Expr("/", BARE_ROOT, kind="root", names={"/"})
        if start == "//@":
            name = self.pick(self.s.all_attrs)
            text = "//@" + name
            if self.chance(0.15):
                text += self.predicate(d, {name}, "attr")
            more, names, kind, multi, attrs, ts = self.steps(d, {name}, "attr", 1)
            return Expr(text + more, PATH, kind=kind, names=names, attrs=kind == "attr",
                        ts=kind == "attr" and name == "timestamp")
        if start in ("/event", "event", "/*"):
            text, names, kind = start, {"event"}, "elem"
        elif start in ("//", "/descendant::"):
            name, names = self.name_test(everything)
            text, kind = start + name, "elem"
        elif start == "//text()":
            text, names, kind = start, everything, "text"
        else:
            text, names = start, everything
            kind = "node" if "node()" in start else "elem"
        if kind != "text" and self.chance(0.3):
            text += self.predicate(d, names, kind)
        more, names, kind, multi, attrs, ts = self.steps(d, names, kind, 2)
        return Expr(text + more, PATH, kind=kind, names=names, attr_multi=multi, attrs=attrs,
                    ts=ts)

    def rel_path(self, d, ctx):
        kind, names = ctx
        if kind in ("attr", "text"):
            parents = self.parent_names(kind, names)
            owner_attrs = sorted(self.attrs_of(parents)) or self.s.all_attrs
            step = self.pick([".", ".", "self::node()", "..", "../*", "..//text()", "../..",
                              "../@", "../@", "../text()", "parent::*"])
            if step == "../@":
                name = self.pick(owner_attrs)
                return Expr(step + name, PATH, kind="attr", names={name}, attrs=True,
                            ts=name == "timestamp")
            if step in (".", "self::node()"):
                return Expr(step, PATH, kind=kind, names=names, attrs=kind == "attr",
                            ts=kind == "attr" and "timestamp" in names)
            if step in ("..", "parent::*"):
                return Expr(step, PATH, kind="elem", names=parents)
            if step == "../..":
                return Expr(step, PATH, kind="elem", names=self.parents_of(parents))
            if "text()" in step:
                return Expr(step, PATH, kind="text", names=parents)
            return Expr(step, PATH, kind="elem", names=self.children_of(parents))
        roll = self.r.random()
        if roll < 0.1:
            return Expr(".", PATH, kind=kind, names=names)
        attributes = self.attrs_of(names)
        if roll < 0.35 and attributes:
            name = self.pick(attributes)
            return Expr(("@" if self.chance(0.85) else "attribute::") + name, PATH,
                        kind="attr", names={name}, attrs=True, ts=name == "timestamp")
        if roll < 0.4:
            start = self.pick(["..", "parent::node()"])
            names2, kind2 = self.parents_of(names), "elem"
        elif roll < 0.45:
            return Expr(self.pick(["text()", "text()[1]", "child::text()"]), PATH,
                        kind="text", names=names)
        elif roll < 0.5:
            name, names2 = self.name_test(self.descendants_of(names))
            start, kind2 = ".//" + name, "elem"
        else:
            name, names2 = self.name_test(self.children_of(names))
            start, kind2 = ("child::" if self.chance(0.1) else "") + name, "elem"
            if self.chance(0.2):
                start += self.predicate(d, names2, "elem")
        more, names2, kind2, multi, attrs, ts = self.steps(d, names2, kind2, 1)
        return Expr(start + more, PATH, kind=kind2, names=names2, attr_multi=multi, attrs=attrs,
                    ts=ts)

    def ns(self, d, ctx=None, need_order=False, need_number=False):
        """A node-set expression. need_order: its first node is well defined;
        need_number: and its number (or sum) is exact and small."""
        for _ in range(20):
            e = self._ns(d, ctx)
            if need_order and not e.order_safe:
                continue
            if need_number and not e.number_safe:
                continue
            return e
        return Expr("//domain-id", PATH, kind="elem", names={"domain-id"})

    def _ns(self, d, ctx):
        roll = self.r.random()
        if d > 0 and roll < 0.08:
            left, right = self._ns(d - 1, ctx), self._ns(d - 1, ctx)
            multi = left.attr_multi or right.attr_multi or (left.attrs and right.attrs)
            kind = left.kind if left.kind == right.kind else "node"
            return Expr(self.binary(left, "|", right, UNION), UNION, kind=kind,
                        names=left.names | right.names, attr_multi=multi,
                        attrs=left.attrs or right.attrs, ts=left.ts or right.ts)
        if d > 0 and roll < 0.15:
            inner = self._ns(d - 1, ctx)
            if inner.kind in ("elem", "node", "text") and not inner.attr_multi and self.chance(0.6):
                pos = self.pick(["1", "2", "last()", "last() - 1", "position() < 3",
                                 "position() > 1"])
                return Expr(f"({inner.text})[{pos}]", PATH, kind=inner.kind, names=inner.names,
                            attrs=inner.attrs, ts=inner.ts)
            if inner.kind in ("elem", "node") and not inner.attrs:
                step, names, kind, multi, attrs, ts = self.step(d - 1, inner.names)
                return Expr(f"({inner.text}){step}", PATH, kind=kind, names=names,
                            attr_multi=multi, attrs=attrs, ts=ts)
            return inner
        if ctx is None or roll < 0.25:
            return self.abs_path(d)
        return self.rel_path(d, ctx)

    def value_literal(self, e, numeric=False):
        """A literal among the values e's nodes may have (or near one), if any."""
        values = sorted(self.s.values(e.kind, e.names)) if e.kind in ("elem", "node", "attr", "text") \
            else []
        if numeric:
            numbers = [v.strip(_XPATH_SPACE) for v in values if xpath_number(v) is not None
                       and not (e.ts and "." in v)]
            if not numbers:
                return None
            text = self.pick(numbers)
            if self.chance(0.3):
                value = xpath_number(text) + self.pick([-1, 1, 0.5])
                text = repr(value)[:-2] if repr(value).endswith(".0") else repr(value)
            return Expr(text, UNARY if text.startswith("-") else PATH)
        values = [v for v in values if len(v) <= 40 and not ("'" in v and '"' in v)]
        if not values:
            return None
        return self.literal(self.pick(values))

    # -- numbers --------------------------------------------------------------

    def num(self, d, ctx=None, safe=False):
        """A number. safe: string() of it is the same in libxml2 as in XPath 1.0
        (exact, dyadic, small; or NaN, or an infinity)."""
        r = self.r.random()
        d1 = max(d - 1, 0)
        if d <= 0 or r < 0.3:
            return self.num_leaf(d, ctx, safe)
        if r < 0.55:
            op = self.pick(["+", "-", "+", "-", "*", "mod"] if safe else
                           ["+", "-", "*", "div", "mod"])
            level = ADDITIVE if op in "+-" else MULTIPLICATIVE
            if op == "*" and safe:   # a leaf times a small integer: stays small
                left, right = self.num_leaf(d1, ctx, True), Expr(str(self.r.randint(0, 5)), PATH)
            else:
                left, right = self.num(d1, ctx, safe), self.num(d1, ctx, safe)
            return Expr(self.binary(left, op, right, level), level)
        if r < 0.62:
            inner = self.num(d1, ctx, safe)
            sep = " " if self.chance(0.3) else ""
            return Expr(f"-{sep}{self.wrap(inner, UNARY)}", UNARY)
        if r < 0.78:
            fn = self.pick(["floor", "ceiling", "round"])
            a = self.num(d1, ctx, safe)
            if safe and self.chance(0.4):   # an integer comes out: division is fine here
                b = self.num(d1, ctx, True)
                a = Expr(self.binary(a, "div", b, MULTIPLICATIVE), MULTIPLICATIVE)
            return Expr(self.call(fn, a), PATH)
        if r < 0.88 and not safe:
            # implicit conversions: a node-set, a string or a boolean in arithmetic
            which = self.pick(["ns", "ns", "str", "bool"])
            if which == "ns":
                operand = self.paren(self.ns(d1, ctx, need_order=True))
            elif which == "str":
                operand = self.str_(d1, ctx)
            else:
                operand = self.bool_(d1, ctx)
            other = self.num_leaf(d1, ctx, False)
            op = self.pick(["+", "-", "*", "div", "mod"])
            level = ADDITIVE if op in "+-" else MULTIPLICATIVE
            if self.chance(0.5):
                return Expr(self.binary(operand, op, other, level), level)
            return Expr(self.binary(other, op, operand, level), level)
        return self.num_leaf(d, ctx, safe)

    def num_leaf(self, d, ctx, safe):
        options = [(3, "int"), (1.5, "dyadic"), (2, "count"), (1.5, "number-ns"), (1, "sum"),
                   (1, "string-length"), (0.7, "number-str"), (0.3, "special"), (0.6, "bool"),
                   (0.6, "last")]
        if ctx is None or ctx[0] != "attr":
            options.append((0.6, "position"))
        if not safe:
            options += [(0.5, "non-dyadic"), (0.5, "div"), (0.5, "ns")]
        what = self.weighted(options)
        d1 = max(d - 1, 0)
        if what == "int":
            return Expr(str(self.pick([0, 1, 2, 3, 4, 5, 7, 10, 12, 42, 100, 250, 1000])), PATH)
        if what == "dyadic":
            return Expr(self.pick(DYADIC), PATH)
        if what == "non-dyadic":
            return Expr(self.pick(NON_DYADIC), PATH)
        if what == "div":
            a, b = self.num_leaf(d1, ctx, False), self.num_leaf(d1, ctx, False)
            return Expr(self.binary(a, "div", b, MULTIPLICATIVE), MULTIPLICATIVE)
        if what == "ns":   # a node-set in a numeric place, e.g. '-//mem'
            e = self.ns(d1, ctx, need_order=True)
            return Expr(f"-{self.wrap(e, UNARY)}", UNARY)
        if what == "count":
            return Expr(self.call("count", self.ns(d1, ctx)), PATH)
        if what == "sum":
            return Expr(self.call("sum", self.ns(d1, ctx, need_order=True, need_number=safe)),
                        PATH)
        if what == "number-ns":
            if ctx is not None and not safe and self.chance(0.3):
                return Expr(self.pick(["number()", "number(.)"]), PATH)
            return Expr(self.call("number", self.ns(d1, ctx, need_order=True, need_number=safe)),
                        PATH)
        if what == "string-length":
            if ctx is not None and self.chance(0.2):
                return Expr("string-length()", PATH)
            return Expr(self.call("string-length", self.str_(d1, ctx)), PATH)
        if what == "number-str":
            if safe:
                return Expr(self.call("number", self.literal(self.pick(NUMERIC_STRINGS))), PATH)
            return Expr(self.call("number", self.str_(d1, ctx)), PATH)
        if what == "special":
            return Expr(self.pick(["1 div 0", "-1 div 0", "0 div 0", "1 div -0"]), MULTIPLICATIVE)
        if what == "bool":
            return Expr(self.call("number", self.bool_(d1, ctx)), PATH)
        if what == "position":
            return Expr("position()", PATH)
        return Expr("last()", PATH)

    # -- strings --------------------------------------------------------------

    def str_(self, d, ctx=None):
        """A string. Numbers reach it only through safe numbers."""
        d1 = max(d - 1, 0)
        if d <= 0 or self.chance(0.25):
            return self.str_leaf(d1, ctx)
        fn = self.weighted([(2, "concat"), (2, "substring"), (1, "substring-before"),
                            (1, "substring-after"), (1.5, "normalize-space"), (1.5, "translate"),
                            (1, "name"), (0.6, "local-name")])
        if fn == "concat":
            args = [self.str_(d1, ctx) for _ in range(self.r.randint(2, 4))]
            return Expr(self.call("concat", *args), PATH)
        if fn == "substring":
            s, start = self.str_(d1, ctx), self.num(d1, ctx)
            if self.chance(0.5):
                return Expr(self.call("substring", s, start), PATH)
            return Expr(self.call("substring", s, start, self.num(d1, ctx)), PATH)
        if fn in ("substring-before", "substring-after"):
            s = self.str_(d1, ctx)
            sep = self.literal(self.pick(["-", " ", "e", "", "a", "1", ".", "web", "/", "é"])) \
                if self.chance(0.6) else self.str_(d1, ctx)
            return Expr(self.call(fn, s, sep), PATH)
        if fn == "normalize-space":
            if ctx is not None and self.chance(0.2):
                return Expr("normalize-space()", PATH)
            return Expr(self.call(fn, self.str_(d1, ctx)), PATH)
        if fn == "translate":
            s = self.str_(d1, ctx)
            frm = self.literal(self.pick(["abc", "aeiou", " ", "-", "web", "é", "0123456789", "aa",
                                          "ABC", "", "xyz", "ü世", "e-", "ba"]))
            to = self.literal(self.pick(["ABC", "", "_", "xy", "AEIOU", "ü", "9876543210", "-",
                                         "bb", "x"]))
            return Expr(self.call(fn, s, frm, to), PATH)
        # name(), local-name()
        if ctx is not None and self.chance(0.3):
            return Expr(f"{fn}()", PATH)
        return Expr(self.call(fn, self.ns(d1, ctx, need_order=True)), PATH)

    def str_leaf(self, d, ctx):
        what = self.weighted([(4, "literal"), (3, "string-ns"), (1.5, "string-num"),
                              (0.5, "string-bool"), (1, "ns"), (0.5, "num"), (0.4, "context")])
        if what == "literal":
            return self.literal(self.pick(self.strings))
        if what == "string-ns":
            return Expr(self.call("string", self.ns(d, ctx, need_order=True)), PATH)
        if what == "string-num":
            return Expr(self.call("string", self.num(d, ctx, safe=True)), PATH)
        if what == "string-bool":
            return Expr(self.call("string", self.bool_(d, ctx)), PATH)
        if what == "ns":    # a node-set where a string is expected: its first node
            return self.ns(d, ctx, need_order=True)
        if what == "num":   # a number where a string is expected
            return self.num(d, ctx, safe=True)
        if ctx is None:
            return Expr(self.pick(["string()", "string(.)", "string(/)"]), PATH)
        return Expr(self.pick(["string()", "string(.)", "."]), PATH)

    # -- booleans -------------------------------------------------------------

    def bool_(self, d, ctx=None):
        r = self.r.random()
        d1 = max(d - 1, 0)
        if d <= 0 or r < 0.45:
            return self.comparison(d1, ctx)
        if r < 0.6:
            op = self.pick(["and", "or"])
            level = AND if op == "and" else OR
            left, right = self.bool_(d1, ctx), self.bool_(d1, ctx)
            return Expr(self.binary(left, op, right, level), level)
        if r < 0.67:
            return Expr(self.call("not", self.bool_(d1, ctx)), PATH)
        if r < 0.69:
            return Expr(self.pick(["true()", "false()"]), PATH)
        if r < 0.8:
            arg = self.weighted([(2, "ns"), (1, "num"), (1, "str")])
            a = self.ns(d1, ctx) if arg == "ns" else \
                self.num(d1, ctx) if arg == "num" else self.str_(d1, ctx)
            return Expr(self.call("boolean", a), PATH)
        if r < 0.9:
            fn = self.pick(["contains", "starts-with"])
            if self.chance(0.5):
                # a part of a value the node-set's first node may hold
                e = self.ns(d1, ctx, need_order=True)
                values = sorted(v for v in self.s.values(e.kind, e.names)
                                if v and not ("'" in v and '"' in v)) \
                    if e.kind in ("elem", "node", "attr", "text") else []
                if values:
                    v = self.pick(values)
                    i = self.r.randrange(len(v))
                    j = self.r.randint(i + 1, min(len(v), i + 6))
                    part = v[:j - i] if fn == "starts-with" else v[i:j]
                    a = e if self.chance(0.6) else Expr(self.call("string", e), PATH)
                    return Expr(self.call(fn, a, self.literal(part)), PATH)
            a = self.str_(d1, ctx)
            b = self.literal(self.pick(["", "web", "e", "-", " ", "1", "é", "running", "crash",
                                        "vd", "true", "NaN"])) if self.chance(0.5) \
                else self.str_(d1, ctx)
            return Expr(self.call(fn, a, b), PATH)
        return self.ns(d1, ctx)   # a node-set as a boolean: not empty

    def operand(self, kind, d, ctx):
        if kind == "ns":
            return self.paren(self.ns(d, ctx))
        if kind == "num":
            return self.num(d, ctx)
        if kind == "str":
            return self.str_(d, ctx)
        if self.chance(0.5):
            return Expr(self.pick(["true()", "false()"]), PATH)
        return self.bool_(d, ctx)

    def comparison(self, d, ctx):
        """Every pair of types, every comparison operator; most often a node-set
        against a value its nodes may hold, so that the answer depends on the event."""
        if self.chance(0.5):
            a = self.paren(self.ns(d, ctx))
            numeric = self.chance(0.35)
            b = self.value_literal(a, numeric=numeric)
            if b is not None:
                if numeric:
                    op = self.weighted([(2, "="), (1, "!="), (1, "<"), (1, "<="), (1, ">"),
                                        (1, ">=")])
                else:
                    op = self.weighted([(5, "="), (2, "!="), (0.5, "<"), (0.5, ">=")])
                level = EQUALITY if op in ("=", "!=") else RELATIONAL
                if self.chance(0.25):
                    a, b = b, a
                return Expr(self.binary(a, op, b, level), level)
        kinds = ["ns", "ns", "ns", "num", "num", "str", "str", "bool"]
        left, right = self.pick(kinds), self.pick(kinds)
        op = self.weighted([(4, "="), (2, "!="), (1, "<"), (1, "<="), (1, ">"), (1, ">=")])
        level = EQUALITY if op in ("=", "!=") else RELATIONAL
        a = self.operand(left, d, ctx)
        b = None
        if a.kind is not None and right in ("str", "num") and self.chance(0.6):
            b = self.value_literal(a, numeric=right == "num" or level == RELATIONAL)
        if b is None:
            if right == "str" and self.chance(0.5):
                b = self.literal(self.pick(self.strings))
            elif right == "num" and self.chance(0.5):
                b = self.num_leaf(0, ctx, False)
            else:
                b = self.operand(right, d, ctx)
        if self.chance(0.3):
            a, b = b, a
        return Expr(self.binary(a, op, b, level), level)

    # -- whole expressions ----------------------------------------------------

    def expression(self, depth=None):
        self.s = self.pick(self.per_event) if self.chance(0.85) else self.everything
        d = depth if depth is not None else self.weighted([(2, 1), (4, 2), (3, 3), (1, 4)])
        what = self.weighted([(8, "bool"), (2, "ns"), (0.7, "num"), (0.7, "str")])
        if what == "bool":
            e = self.bool_(d)
        elif what == "ns":
            e = self.ns(d)
        elif what == "num":
            e = self.num(d)
        else:
            e = self.str_(d)
        return e.text


def generate(count=GENERATED, seed=SEED):
    """`count` distinct expressions, none a type pattern, none in HAND."""
    gen = Generator(seed)
    seen = {expr for expr, _, _ in HAND}
    out = []
    attempts = 0
    while len(out) < count:
        attempts += 1
        assert attempts < count * 50, "the grammar keeps producing duplicates"
        expr = gen.expression()
        if expr in seen or is_type_pattern(expr) or len(expr) > MAX_LENGTH:
            continue
        seen.add(expr)
        out.append(expr)
    return out


def hand_expressions():
    """The distinct hand-written expressions, in order."""
    out = []
    for expr, _, _ in HAND:
        if expr not in out:
            out.append(expr)
    return out


def main(argv):
    exprs = generate()
    if "--events" in argv:
        for name, xml in EVENTS:
            print(f"{name}: {xml!r}")
        return 0
    if "--list" in argv:
        for expr in exprs:
            print(expr)
        return 0
    hand = hand_expressions()
    print(f"{len(EVENTS)} events; {len(HAND)} hand-written checks over {len(hand)} expressions; "
          f"{len(COMBINED)} combined filters; {len(exprs)} generated expressions; "
          f"{len(REFUSED)} entries to refuse")
    print(f"pairs: ({len(hand)} + {len(exprs)}) expressions x {len(EVENTS)} events + "
          f"{len(COMBINED)} filters x {len(EVENTS)} events")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
