"""The fixed vocabulary of the sample catalog: category tree, attribute schemas, text templates.

Nothing here is random; :mod:`kgwb.data.sample.catalog` draws brands, items and texts from it.
Attribute values are written ``"Canonical|variant|variant"``: the first spelling is the canonical
value (the one the catalog table and the ground truth use), the others are surface variants that
product texts may use instead (``"Navy Blue|Navy|navy"``).  Each attribute has one channel:

* ``both``    — in the catalog table (``item_attributes``) and in titles/descriptions,
* ``text``    — only in titles/descriptions: what an extractor has to recover,
* ``catalog`` — only in the catalog table: never written in any text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BOTH, TEXT, CATALOG = "both", "text", "catalog"
#: title slots: before the product noun, ``for ...`` / ``with ...`` after it, comma-separated tail
PRE, FOR, WITH, TAIL, NONE = "pre", "for", "with", "tail", "none"


@dataclass(frozen=True)
class AttributeSpec:
    name: str
    channel: str
    slot: str
    values: tuple[str, ...]
    #: description sentences; ``{v}`` is the value, ``{n}`` the product noun
    describe: tuple[str, ...] = ()
    #: title phrase around the value (``"with {v} Playtime"``)
    title: str = "{v}"
    #: also accept the all-lower-case spelling as a surface variant
    lowercase: bool = False
    #: users have a favourite value of this attribute (it steers their choices)
    taste: bool = False
    #: values used only by leaves that list them (lipstick shades, denim washes)
    special: tuple[str, ...] = ()
    #: review sentences about this attribute, by sentiment (negative, neutral, positive)
    review: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] | None = None


def _a(name: str, channel: str, slot: str, values: str, **kw) -> AttributeSpec:
    vals = tuple(v.strip() for v in values.strip().split("\n") if v.strip())
    return AttributeSpec(name, channel, slot, vals, **kw)


ATTRIBUTES: tuple[AttributeSpec, ...] = (
    _a(
        "color",
        BOTH,
        TAIL,
        """
        Black
        White
        Navy Blue|Navy
        Grey|Gray
        Red
        Silver
        Beige|Tan
        Olive Green|Olive
        Burgundy|Wine Red|Maroon
        Blush Pink|Pink|Light Pink
        Teal
        Charcoal|Charcoal Grey
        Ivory|Off-White|Cream
        Sky Blue|Light Blue
        Rose Gold|Rose-Gold
        Mustard Yellow|Mustard
        Nude
        Coral
        Berry
        Mauve
        Dark Wash
        Light Wash
        """,
        describe=("Available in {v}.", "This {n} comes in {v}.", "Color: {v}.", "Finished in {v}."),
        lowercase=True,
        taste=True,
        special=("Nude", "Coral", "Berry", "Mauve", "Dark Wash", "Light Wash"),
        review=(
            (
                "The {v} looks nothing like the photos.",
                "The color is off, {v} looks duller in person.",
            ),
            ("The {v} is fine.", "{v} is a bit different from the picture."),
            ("The {v} color is gorgeous.", "Love the {v}, looks even better in person."),
        ),
    ),
    _a(
        "size",
        BOTH,
        TAIL,
        """
        X-Small|XS
        Small|S
        Medium|M
        Large|L
        X-Large|XL
        XX-Large|XXL|2XL
        US 6|Size 6
        US 7|Size 7
        US 8|Size 8
        US 9|Size 9
        US 10|Size 10
        US 11|Size 11
        US 12|Size 12
        Twin
        Full|Double
        Queen|Queen Size
        King|King Size
        California King|Cal King
        Standard|Standard Size
        5 x 7 ft|5' x 7'|5x7
        8 x 10 ft|8' x 10'|8x10
        3 x 5 ft|3' x 5'|3x5
        2 x 8 ft|2' x 8'|2x8
        """,
        describe=("Size: {v}.", "This listing is for size {v}."),
        review=(
            ("Runs small, I ordered {v} and it does not fit.", "Sizing is way off, {v} is tiny."),
            ("Ordered {v}, fits as expected.", "{v} fits okay."),
            ("Ordered {v} and it fits perfectly.", "True to size, {v} is just right."),
        ),
    ),
    _a(
        "volume",
        BOTH,
        TAIL,
        """
        30 ml|30ml|1 fl oz
        50 ml|50ml|1.7 fl oz
        100 ml|100ml|3.4 fl oz
        250 ml|250ml|8.5 fl oz
        400 ml|400ml|13.5 fl oz
        500 ml|500ml|16.9 fl oz
        """,
        describe=("Contains {v}.", "Size: {v}.", "Comes in a {v} bottle."),
        review=(
            ("The {v} bottle runs out way too fast.",),
            ("{v} lasts a few weeks.",),
            ("The {v} bottle lasts for ages.",),
        ),
    ),
    _a(
        "capacity",
        BOTH,
        TAIL,
        """
        5000mAh|5,000 mAh|5000 mAh
        10000mAh|10,000 mAh|10000 mAh
        20000mAh|20,000 mAh|20000 mAh
        26800mAh|26,800 mAh|26800 mAh
        18 oz|18oz
        24 oz|24oz
        32 oz|32oz
        40 oz|40oz
        20L|20 L|20 Liter
        30L|30 L|30 Liter
        45L|45 L|45 Liter
        1-Cup|Single Serve|Single-Serve
        5-Cup|5 Cup
        12-Cup|12 Cup|12 Cups
        2 Quart|2 qt|2-Quart
        3 Quart|3 qt|3-Quart
        5 Quart|5 qt|5-Quart
        1-Person|1 Person|1P
        2-Person|2 Person|2P
        4-Person|4 Person|4P
        6-Person|6 Person|6P
        4-Port|4 Port|4 Ports
        7-Port|7 Port|7 Ports
        10-Port|10 Port|10 Ports
        """,
        describe=("Capacity: {v}.", "Offers a generous {v} capacity."),
        review=(
            ("{v} is much smaller than advertised.",),
            ("{v} is enough for me.",),
            ("{v} is plenty of capacity.",),
        ),
    ),
    _a(
        "material",
        BOTH,
        PRE,
        """
        Cotton|100% Cotton
        Organic Cotton
        Linen
        Polyester|Poly
        Stainless Steel|Stainless-Steel|18/8 Stainless Steel
        Cast Iron|Cast-Iron
        Ceramic
        Bamboo
        Leather|Genuine Leather
        Faux Leather|PU Leather|Vegan Leather
        Wool|Merino Wool
        Silicone
        Aluminum|Aluminium
        Microfiber|Microfibre
        Nylon
        Denim
        Stretch Denim
        Suede
        Mesh
        Rubber|Natural Rubber
        TPE
        PVC
        TPU
        Memory Foam
        Down|Goose Down
        Soy Wax
        Beeswax
        Glass
        Tritan
        Neoprene
        Jute
        Polycarbonate
        Carbon Steel|High-Carbon Steel
        """,
        describe=("Made from {v}.", "Crafted from durable {v}.", "Material: {v}."),
        lowercase=True,
        taste=True,
        review=(
            ("The {v} feels cheap.", "The {v} started falling apart."),
            ("The {v} is okay for the price.",),
            ("The {v} feels really high quality.", "Solid {v}, very well made."),
        ),
    ),
    _a(
        "scent",
        BOTH,
        PRE,
        """
        Lavender
        Vanilla
        Coconut
        Citrus
        Unscented|Fragrance-Free|Fragrance Free
        Rose
        Sandalwood
        Eucalyptus
        Green Tea
        Jasmine
        Ocean Breeze|Sea Breeze
        Cedarwood|Cedar
        Amber
        Fresh Linen
        """,
        describe=("Scent: {v}.", "Fragrance: {v}.", "Features a {v} scent."),
        lowercase=True,
        taste=True,
        review=(
            ("The {v} scent is way too strong.", "Did not like the {v} smell at all."),
            ("The {v} scent is subtle.",),
            ("The {v} scent is amazing.", "Smells like real {v}, love it."),
        ),
    ),
    _a(
        "skin_type",
        BOTH,
        FOR,
        """
        Dry Skin
        Oily Skin
        Sensitive Skin
        Combination Skin
        All Skin Types
        """,
        describe=("Formulated for {v}.", "Suitable for {v}.", "Skin type: {v}."),
        title="for {v}",
        lowercase=True,
        review=(
            ("Broke me out even though it says {v}.",),
            ("Works okay on {v}.",),
            ("Finally something that works on {v}.",),
        ),
    ),
    _a(
        "hair_type",
        BOTH,
        FOR,
        """
        Curly Hair
        Dry Hair
        Color-Treated Hair|Color Treated Hair|Colour-Treated Hair
        Fine Hair
        Damaged Hair
        All Hair Types
        Thick Hair
        """,
        describe=("Ideal for {v}.", "Made for {v}.", "Hair type: {v}."),
        title="for {v}",
        lowercase=True,
        review=(
            ("Left my {v} greasy and flat.",),
            ("Does an okay job on {v}.",),
            ("My {v} has never looked better.",),
        ),
    ),
    _a(
        "connectivity",
        BOTH,
        PRE,
        """
        Bluetooth 5.3|BT 5.3|Bluetooth v5.3
        Bluetooth 5.0|BT 5.0|Bluetooth v5.0
        Wired
        USB-C|USB Type-C|Type-C
        2.4GHz Wireless|2.4G Wireless|2.4 GHz Wireless
        Lightning
        USB-A|USB Type-A
        """,
        describe=("Connectivity: {v}.", "Connects via {v}."),
        review=(
            ("The {v} connection keeps dropping.",),
            ("{v} pairing works most of the time.",),
            ("{v} connection is rock solid.",),
        ),
    ),
    _a(
        "pattern",
        BOTH,
        PRE,
        """
        Solid
        Striped|Stripe|Stripes
        Floral
        Plaid|Tartan
        Geometric
        Polka Dot|Polka-Dot|Dotted
        Camo|Camouflage
        Herringbone
        """,
        describe=("Pattern: {v}.", "Features a {v} design."),
        lowercase=True,
        taste=True,
        review=(
            ("The {v} print looks faded.",),
            ("The {v} pattern is fine.",),
            ("The {v} pattern is so cute.",),
        ),
    ),
    _a(
        "gender",
        BOTH,
        PRE,
        """
        Women|Women's|Womens
        Men|Men's|Mens
        Unisex
        """,
        describe=("Department: {v}.", "Fit: {v}."),
    ),
    _a(
        "spf",
        BOTH,
        TAIL,
        """
        SPF 15|SPF15
        SPF 30|SPF30
        SPF 50|SPF50
        """,
        describe=("Broad spectrum {v} protection.", "Offers {v} protection."),
        review=(
            ("Burned even with {v}.",),
            ("{v} is okay for short walks.",),
            ("{v} and no white cast!",),
        ),
    ),
    _a(
        "weight",
        BOTH,
        TAIL,
        """
        5 lb|5 lbs|5-Pound
        10 lb|10 lbs|10-Pound
        15 lb|15 lbs|15-Pound
        20 lb|20 lbs|20-Pound
        25 lb|25 lbs|25-Pound
        """,
        describe=("Weight: {v}.", "Each one weighs {v}."),
    ),
    _a(
        "wattage",
        BOTH,
        TAIL,
        """
        20W|20 W|20-Watt
        30W|30 W|30-Watt
        45W|45 W|45-Watt
        65W|65 W|65-Watt
        100W|100 W|100-Watt
        1000W|1000 W|1000-Watt
        1500W|1500 W|1500-Watt
        """,
        describe=("Output: {v}.", "Power: {v}."),
    ),
    _a(
        "thread_count",
        BOTH,
        TAIL,
        """
        300 Thread Count|300 TC|300TC
        400 Thread Count|400 TC|400TC
        600 Thread Count|600 TC|600TC
        800 Thread Count|800 TC|800TC
        1000 Thread Count|1000 TC|1000TC
        """,
        describe=("Woven at {v}.", "{v} for a soft, smooth feel."),
        lowercase=True,
    ),
    _a(
        "pack_size",
        BOTH,
        TAIL,
        """
        Pack of 2|2-Pack|2 Pack
        Pack of 3|3-Pack|3 Pack
        Pack of 4|4-Pack|4 Pack
        Pack of 6|6-Pack|6 Pack
        """,
        describe=("Quantity: {v}.",),
    ),
    _a(
        "thickness",
        BOTH,
        TAIL,
        """
        4mm|4 mm
        6mm|6 mm|1/4 Inch
        8mm|8 mm
        10mm|10 mm
        """,
        describe=("Thickness: {v}.", "{v} of cushioning."),
    ),
    _a(
        "temperature_rating",
        BOTH,
        TAIL,
        """
        0°F|0 Degree|0 F
        20°F|20 Degree|20 F
        30°F|30 Degree|30 F
        40°F|40 Degree|40 F
        """,
        describe=("Temperature rating: {v}.", "Rated to {v}."),
    ),
    # ---------------------------------------------------------------- only in text
    _a(
        "ingredient",
        TEXT,
        WITH,
        """
        Argan Oil
        Hyaluronic Acid
        Vitamin C
        Aloe Vera
        Shea Butter
        Niacinamide
        Tea Tree Oil|Tea Tree
        Retinol
        Coconut Oil
        Keratin
        Biotin
        Salicylic Acid
        Jojoba Oil
        Collagen
        Rosehip Oil
        """,
        describe=("Enriched with {v}.", "Key ingredient: {v}.", "Formulated with {v}."),
        title="with {v}",
        lowercase=True,
        review=(
            ("The {v} did nothing for me.",),
            ("Not sure the {v} makes a difference.",),
            ("You can tell the {v} works.",),
        ),
    ),
    _a(
        "feature",
        TEXT,
        PRE,
        """
        Sulfate-Free|Sulfate Free
        Paraben-Free|Paraben Free
        Cruelty-Free|Cruelty Free
        Vegan
        Long-Lasting|Long Lasting
        Noise Cancelling|Noise-Cancelling|ANC
        Fast Charging|Fast-Charging|Quick Charge
        Waterproof|Water-Proof
        Water-Resistant|Water Resistant
        RGB Backlit|RGB
        Ergonomic
        Foldable
        Non-Stick|Nonstick|Non Stick
        Dishwasher Safe|Dishwasher-Safe
        Programmable
        Hypoallergenic
        Machine Washable
        Quick-Dry|Quick Dry
        Stretch|Stretchy
        Breathable
        Slip-Resistant|Slip Resistant
        Non-Slip|Nonslip|Anti-Slip
        Insulated|Double-Wall Insulated|Vacuum Insulated
        BPA-Free|BPA Free
        Lightweight|Ultralight|Ultra-Light
        Leak-Proof|Leakproof
        Shockproof|Shock-Proof
        """,
        describe=("Features: {v}.", "Key feature: {v}."),
        lowercase=True,
        review=(
            ("So much for {v}, it failed in a week.", "Not really {v} as claimed."),
            ("{v} as described, nothing special.",),
            ("{v} as promised, very impressed.", "Really is {v}."),
        ),
    ),
    _a(
        "compatible_with",
        TEXT,
        FOR,
        """
        iPhone 15|iPhone15
        iPhone 14|iPhone14
        Galaxy S24|Samsung Galaxy S24
        Pixel 8|Google Pixel 8
        MacBook Pro|Macbook Pro
        MacBook Air|Macbook Air
        Windows PC|Windows
        Chromebook
        iPad
        """,
        describe=("Compatible with {v}.", "Works with {v}."),
        title="for {v}",
        review=(
            ("Does not work with my {v}.",),
            ("Works with my {v}, mostly.",),
            ("Works great with my {v}.",),
        ),
    ),
    _a(
        "finish",
        TEXT,
        PRE,
        """
        Matte
        Satin
        Glossy|Gloss|High Shine
        Dewy
        Shimmer|Shimmery
        Natural Finish|Natural
        """,
        describe=("Finish: {v}.", "Delivers a {v} look."),
        lowercase=True,
        review=(
            ("The {v} finish looks patchy.",),
            ("The {v} finish is nice.",),
            ("Gorgeous {v} finish.",),
        ),
    ),
    _a(
        "battery_life",
        TEXT,
        WITH,
        """
        8 Hours|8H|8-Hour|8 hrs
        12 Hours|12H|12-Hour|12 hrs
        20 Hours|20H|20-Hour|20 hrs
        30 Hours|30H|30-Hour|30 hrs
        40 Hours|40H|40-Hour|40 hrs
        60 Hours|60H|60-Hour|60 hrs
        """,
        describe=("Up to {v} of battery life.", "Battery life: {v}."),
        title="with {v} Playtime",
        review=(
            ("Battery is nowhere near {v}.",),
            ("Battery gets close to {v}.",),
            ("Battery really lasts {v}.",),
        ),
    ),
    # ---------------------------------------------------------------- only in the catalog
    _a(
        "country_of_origin",
        CATALOG,
        NONE,
        """
        China
        USA|United States
        Germany
        Vietnam
        India
        South Korea|Korea
        France
        Italy
        Japan
        Mexico
        Portugal
        Bangladesh
        """,
    ),
    _a(
        "warranty",
        CATALOG,
        NONE,
        """
        90 Days
        1 Year
        2 Years
        3 Years
        Lifetime
        """,
    ),
    _a(
        "care_instructions",
        CATALOG,
        NONE,
        """
        Machine Wash Cold
        Machine Wash Warm
        Hand Wash Only
        Dry Clean Only
        Spot Clean Only
        """,
    ),
)
ATTRIBUTE_INDEX = {a.name: i for i, a in enumerate(ATTRIBUTES)}
TEXT_ONLY_ATTRIBUTES = tuple(a.name for a in ATTRIBUTES if a.channel == TEXT)
CATALOG_ONLY_ATTRIBUTES = tuple(a.name for a in ATTRIBUTES if a.channel == CATALOG)
TASTE_ATTRIBUTES = tuple(a.name for a in ATTRIBUTES if a.taste)


@dataclass(frozen=True)
class LeafSpec:
    domain: str
    group: str
    name: str
    nouns: tuple[str, ...]
    #: the product noun of reviews and descriptions ("shampoo")
    short: str
    #: median price in dollars
    price: float
    #: attribute names; a trailing ``?`` marks an attribute only some items have
    attributes: tuple[str, ...]
    #: canonical values per attribute where the leaf uses a subset of the attribute's values
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: leaves whose items are bought together with this one's (also_bought)
    complements: tuple[str, ...] = ()


def _leaf(domain, group, name, nouns, short, price, attrs, complements=(), **values) -> LeafSpec:
    vals = {k: tuple(v.split(";")) for k, v in values.items()}
    return LeafSpec(
        domain,
        group,
        name,
        tuple(nouns),
        short,
        price,
        tuple(attrs.split()),
        vals,
        tuple(complements),
    )


_CLOTHES = "X-Small;Small;Medium;Large;X-Large;XX-Large"
_SHOES = "US 6;US 7;US 8;US 9;US 10;US 11;US 12"
_BED = "Twin;Full;Queen;King;California King"
_BEAUTY_FEATURES = "Sulfate-Free;Paraben-Free;Cruelty-Free;Vegan"
_FABRIC_CARE = "Machine Wash Cold;Machine Wash Warm;Hand Wash Only;Dry Clean Only"

LEAVES: tuple[LeafSpec, ...] = (
    # ------------------------------------------------------------------ Beauty
    _leaf(
        "Beauty",
        "Hair Care",
        "Shampoo",
        ["Shampoo", "Daily Shampoo", "Clarifying Shampoo"],
        "shampoo",
        12,
        "volume scent hair_type ingredient feature? pack_size? country_of_origin",
        ["Conditioner", "Hair Oil"],
        feature=_BEAUTY_FEATURES,
        ingredient="Argan Oil;Tea Tree Oil;Coconut Oil;Keratin;Biotin;Aloe Vera;Jojoba Oil",
    ),
    _leaf(
        "Beauty",
        "Hair Care",
        "Conditioner",
        ["Conditioner", "Leave-In Conditioner", "Deep Conditioner"],
        "conditioner",
        13,
        "volume scent hair_type ingredient feature? pack_size? country_of_origin",
        ["Shampoo", "Hair Oil"],
        feature=_BEAUTY_FEATURES,
        ingredient="Argan Oil;Shea Butter;Coconut Oil;Keratin;Biotin;Jojoba Oil",
    ),
    _leaf(
        "Beauty",
        "Hair Care",
        "Hair Oil",
        ["Hair Oil", "Hair Serum", "Nourishing Hair Oil"],
        "hair oil",
        18,
        "volume scent? hair_type ingredient feature? country_of_origin",
        ["Shampoo", "Conditioner"],
        volume="30 ml;50 ml;100 ml",
        feature=_BEAUTY_FEATURES,
        ingredient="Argan Oil;Jojoba Oil;Rosehip Oil;Coconut Oil;Keratin",
    ),
    _leaf(
        "Beauty",
        "Skin Care",
        "Moisturizer",
        ["Face Moisturizer", "Moisturizing Cream", "Night Cream"],
        "moisturizer",
        22,
        "volume skin_type ingredient scent? spf? feature? country_of_origin",
        ["Cleanser", "Serum"],
        volume="30 ml;50 ml;100 ml",
        feature=_BEAUTY_FEATURES,
        ingredient="Hyaluronic Acid;Niacinamide;Shea Butter;Retinol;Collagen;Aloe Vera",
    ),
    _leaf(
        "Beauty",
        "Skin Care",
        "Cleanser",
        ["Facial Cleanser", "Foaming Cleanser", "Gel Cleanser"],
        "cleanser",
        14,
        "volume skin_type ingredient scent? feature? country_of_origin",
        ["Moisturizer", "Serum"],
        volume="100 ml;250 ml;400 ml",
        feature=_BEAUTY_FEATURES,
        ingredient="Salicylic Acid;Tea Tree Oil;Aloe Vera;Niacinamide;Vitamin C",
    ),
    _leaf(
        "Beauty",
        "Skin Care",
        "Serum",
        ["Face Serum", "Brightening Serum", "Hydrating Serum"],
        "serum",
        25,
        "volume skin_type ingredient feature? country_of_origin",
        ["Moisturizer", "Cleanser"],
        volume="30 ml;50 ml",
        feature=_BEAUTY_FEATURES,
        ingredient="Vitamin C;Hyaluronic Acid;Niacinamide;Retinol;Rosehip Oil;Collagen",
    ),
    _leaf(
        "Beauty",
        "Skin Care",
        "Sunscreen",
        ["Sunscreen", "Sunscreen Lotion", "Mineral Sunscreen"],
        "sunscreen",
        15,
        "spf volume skin_type feature? country_of_origin",
        ["Moisturizer"],
        volume="50 ml;100 ml;250 ml",
        feature="Water-Resistant;Cruelty-Free;Vegan;Paraben-Free",
    ),
    _leaf(
        "Beauty",
        "Fragrance",
        "Perfume",
        ["Eau de Parfum", "Perfume", "Eau de Toilette"],
        "perfume",
        60,
        "scent volume gender feature? country_of_origin",
        ["Body Mist"],
        volume="30 ml;50 ml;100 ml",
        scent="Lavender;Vanilla;Citrus;Rose;Sandalwood;Jasmine;Ocean Breeze;Cedarwood;Amber",
        feature="Long-Lasting;Vegan;Cruelty-Free",
    ),
    _leaf(
        "Beauty",
        "Fragrance",
        "Body Mist",
        ["Body Mist", "Fragrance Mist", "Body Spray"],
        "body mist",
        14,
        "scent volume gender? country_of_origin",
        ["Perfume", "Moisturizer"],
        volume="100 ml;250 ml",
        scent="Lavender;Vanilla;Coconut;Citrus;Rose;Jasmine;Ocean Breeze;Fresh Linen",
    ),
    _leaf(
        "Beauty",
        "Makeup",
        "Lipstick",
        ["Lipstick", "Liquid Lipstick", "Lip Color"],
        "lipstick",
        16,
        "color finish feature? pack_size? country_of_origin",
        ["Foundation"],
        color="Red;Nude;Coral;Berry;Mauve;Burgundy;Blush Pink",
        feature="Long-Lasting;Vegan;Cruelty-Free",
    ),
    _leaf(
        "Beauty",
        "Makeup",
        "Foundation",
        ["Foundation", "Liquid Foundation", "Cushion Foundation"],
        "foundation",
        30,
        "skin_type finish volume? spf? feature? country_of_origin",
        ["Lipstick", "Serum"],
        volume="30 ml;50 ml",
        feature="Long-Lasting;Vegan;Cruelty-Free;Paraben-Free",
    ),
    # ------------------------------------------------------------- Electronics
    _leaf(
        "Electronics",
        "Audio",
        "Headphones",
        ["Over-Ear Headphones", "Wireless Headphones", "Studio Headphones"],
        "headphones",
        80,
        "color connectivity battery_life feature? warranty country_of_origin",
        ["Power Banks", "Chargers"],
        color="Black;White;Silver;Navy Blue;Rose Gold;Grey",
        connectivity="Bluetooth 5.3;Bluetooth 5.0;Wired",
        feature="Noise Cancelling;Foldable;Lightweight",
    ),
    _leaf(
        "Electronics",
        "Audio",
        "Earbuds",
        ["Wireless Earbuds", "True Wireless Earbuds", "Sport Earbuds"],
        "earbuds",
        50,
        "color connectivity battery_life feature? warranty country_of_origin",
        ["Phone Cases", "Chargers"],
        color="Black;White;Navy Blue;Rose Gold;Sky Blue",
        connectivity="Bluetooth 5.3;Bluetooth 5.0",
        battery_life="8 Hours;12 Hours;20 Hours;30 Hours",
        feature="Noise Cancelling;Waterproof;Water-Resistant;Fast Charging",
    ),
    _leaf(
        "Electronics",
        "Audio",
        "Bluetooth Speakers",
        ["Bluetooth Speaker", "Portable Speaker", "Outdoor Speaker"],
        "speaker",
        45,
        "color connectivity battery_life feature? warranty country_of_origin",
        ["Power Banks"],
        color="Black;Grey;Navy Blue;Red;Teal;Olive Green",
        connectivity="Bluetooth 5.3;Bluetooth 5.0",
        battery_life="12 Hours;20 Hours;30 Hours;40 Hours",
        feature="Waterproof;Shockproof;Lightweight",
    ),
    _leaf(
        "Electronics",
        "Computer Accessories",
        "Keyboards",
        ["Mechanical Keyboard", "Wireless Keyboard", "Compact Keyboard"],
        "keyboard",
        55,
        "color connectivity compatible_with feature? warranty country_of_origin",
        ["Mice", "USB Hubs"],
        color="Black;White;Grey;Sky Blue;Blush Pink",
        connectivity="Bluetooth 5.0;USB-C;2.4GHz Wireless;Wired",
        compatible_with="MacBook Pro;MacBook Air;Windows PC;Chromebook;iPad",
        feature="RGB Backlit;Ergonomic",
    ),
    _leaf(
        "Electronics",
        "Computer Accessories",
        "Mice",
        ["Wireless Mouse", "Ergonomic Mouse", "Gaming Mouse"],
        "mouse",
        25,
        "color connectivity compatible_with feature? warranty country_of_origin",
        ["Keyboards"],
        color="Black;White;Grey;Blush Pink",
        connectivity="Bluetooth 5.0;2.4GHz Wireless;Wired;USB-A",
        compatible_with="MacBook Pro;MacBook Air;Windows PC;Chromebook",
        feature="RGB Backlit;Ergonomic",
    ),
    _leaf(
        "Electronics",
        "Computer Accessories",
        "USB Hubs",
        ["USB Hub", "Multiport Adapter", "Docking Station"],
        "hub",
        30,
        "capacity connectivity compatible_with material? warranty country_of_origin",
        ["Keyboards", "Mice"],
        capacity="4-Port;7-Port;10-Port",
        connectivity="USB-C;USB-A",
        compatible_with="MacBook Pro;MacBook Air;Windows PC;Chromebook;iPad",
        material="Aluminum;Polycarbonate",
    ),
    _leaf(
        "Electronics",
        "Mobile Accessories",
        "Phone Cases",
        ["Phone Case", "Protective Case", "Slim Case"],
        "case",
        15,
        "color material compatible_with pattern? feature? country_of_origin",
        ["Chargers", "Power Banks"],
        material="Silicone;TPU;Faux Leather;Leather;Polycarbonate",
        compatible_with="iPhone 15;iPhone 14;Galaxy S24;Pixel 8",
        feature="Shockproof;Waterproof;Lightweight",
    ),
    _leaf(
        "Electronics",
        "Mobile Accessories",
        "Chargers",
        ["Wall Charger", "Charger Block", "Charging Station"],
        "charger",
        20,
        "wattage connectivity color? compatible_with feature? warranty country_of_origin",
        ["Phone Cases", "Power Banks"],
        wattage="20W;30W;45W;65W;100W",
        connectivity="USB-C;USB-A;Lightning",
        color="Black;White",
        compatible_with="iPhone 15;iPhone 14;Galaxy S24;Pixel 8;MacBook Air;iPad",
        feature="Fast Charging;Foldable;Lightweight",
    ),
    _leaf(
        "Electronics",
        "Mobile Accessories",
        "Power Banks",
        ["Power Bank", "Portable Charger", "Battery Pack"],
        "power bank",
        35,
        "capacity connectivity color? feature? warranty country_of_origin",
        ["Chargers"],
        capacity="5000mAh;10000mAh;20000mAh;26800mAh",
        connectivity="USB-C;USB-A;Lightning",
        color="Black;White;Navy Blue;Rose Gold",
        feature="Fast Charging;Lightweight;Shockproof",
    ),
    # ---------------------------------------------------------- Home & Kitchen
    _leaf(
        "Home & Kitchen",
        "Kitchen",
        "Cookware",
        ["Frying Pan", "Skillet", "Saucepan", "Dutch Oven"],
        "pan",
        45,
        "material capacity color? feature? warranty? country_of_origin",
        ["Kitchen Knives"],
        material="Stainless Steel;Cast Iron;Ceramic;Aluminum;Carbon Steel",
        capacity="2 Quart;3 Quart;5 Quart",
        color="Black;Grey;Red;Teal;Ivory;Sky Blue",
        feature="Non-Stick;Dishwasher Safe",
    ),
    _leaf(
        "Home & Kitchen",
        "Kitchen",
        "Kitchen Knives",
        ["Chef Knife", "Knife Set", "Santoku Knife"],
        "knife",
        40,
        "material color? feature? pack_size? warranty? country_of_origin",
        ["Cookware"],
        material="Stainless Steel;Carbon Steel;Ceramic",
        color="Black;Silver;Grey",
        feature="Dishwasher Safe;Ergonomic",
    ),
    _leaf(
        "Home & Kitchen",
        "Kitchen",
        "Coffee Makers",
        ["Coffee Maker", "Drip Coffee Maker", "Espresso Machine"],
        "coffee maker",
        90,
        "capacity color wattage? feature? warranty country_of_origin",
        ["Cookware"],
        capacity="1-Cup;5-Cup;12-Cup",
        color="Black;Silver;White;Red",
        wattage="1000W;1500W",
        feature="Programmable;Dishwasher Safe",
    ),
    _leaf(
        "Home & Kitchen",
        "Bedding",
        "Bed Sheets",
        ["Sheet Set", "Bed Sheets", "Fitted Sheet"],
        "sheets",
        40,
        "size color material thread_count pattern? feature? care_instructions country_of_origin",
        ["Pillows", "Duvets"],
        size=_BED,
        color="White;Ivory;Grey;Navy Blue;Sky Blue;Blush Pink;Olive Green;Beige",
        material="Cotton;Organic Cotton;Linen;Microfiber;Bamboo",
        pattern="Solid;Striped;Floral",
        feature="Hypoallergenic;Breathable",
        care_instructions="Machine Wash Cold;Machine Wash Warm",
    ),
    _leaf(
        "Home & Kitchen",
        "Bedding",
        "Pillows",
        ["Bed Pillow", "Pillow", "Cooling Pillow"],
        "pillow",
        30,
        "size material feature? pack_size? care_instructions country_of_origin",
        ["Bed Sheets", "Duvets"],
        size="Standard;Queen;King",
        material="Memory Foam;Down;Polyester;Bamboo",
        feature="Hypoallergenic;Machine Washable;Breathable",
        care_instructions="Machine Wash Cold;Spot Clean Only",
    ),
    _leaf(
        "Home & Kitchen",
        "Bedding",
        "Duvets",
        ["Duvet Insert", "Comforter", "All-Season Comforter"],
        "comforter",
        70,
        "size material color? feature? care_instructions country_of_origin",
        ["Bed Sheets", "Pillows"],
        size=_BED,
        material="Down;Polyester;Cotton;Microfiber",
        color="White;Ivory;Grey;Navy Blue",
        feature="Hypoallergenic;Machine Washable;Lightweight",
        care_instructions=_FABRIC_CARE,
    ),
    _leaf(
        "Home & Kitchen",
        "Home Decor",
        "Candles",
        ["Scented Candle", "Jar Candle", "Candle"],
        "candle",
        18,
        "scent material color? pack_size? country_of_origin",
        ["Throw Pillows"],
        material="Soy Wax;Beeswax",
        color="White;Ivory;Beige;Sky Blue;Blush Pink;Olive Green",
    ),
    _leaf(
        "Home & Kitchen",
        "Home Decor",
        "Rugs",
        ["Area Rug", "Runner Rug", "Washable Rug"],
        "rug",
        90,
        "size color pattern material feature? country_of_origin",
        ["Throw Pillows"],
        size="5 x 7 ft;8 x 10 ft;3 x 5 ft;2 x 8 ft",
        material="Wool;Jute;Polyester;Cotton",
        feature="Machine Washable;Non-Slip",
    ),
    _leaf(
        "Home & Kitchen",
        "Home Decor",
        "Throw Pillows",
        ["Throw Pillow Cover", "Decorative Pillow", "Cushion Cover"],
        "pillow cover",
        20,
        "color pattern material pack_size? country_of_origin",
        ["Candles", "Rugs"],
        material="Cotton;Linen;Polyester;Wool",
    ),
    # ----------------------------------------------------------------- Clothing
    _leaf(
        "Clothing",
        "Women",
        "Dresses",
        ["Midi Dress", "Maxi Dress", "Wrap Dress", "Sundress"],
        "dress",
        45,
        "color size material pattern gender feature? care_instructions country_of_origin",
        ["Sandals"],
        size=_CLOTHES,
        gender="Women",
        material="Cotton;Linen;Polyester",
        feature="Stretch;Breathable",
        care_instructions=_FABRIC_CARE,
    ),
    _leaf(
        "Clothing",
        "Women",
        "Blouses",
        ["Blouse", "Button-Down Shirt", "Tunic Top"],
        "blouse",
        30,
        "color size material pattern? gender care_instructions country_of_origin",
        ["Jeans"],
        size=_CLOTHES,
        gender="Women",
        material="Cotton;Linen;Polyester",
        care_instructions=_FABRIC_CARE,
    ),
    _leaf(
        "Clothing",
        "Men",
        "T-Shirts",
        ["T-Shirt", "Crew Neck Tee", "Graphic Tee"],
        "shirt",
        18,
        "color size material gender pattern? feature? care_instructions country_of_origin",
        ["Jeans"],
        size=_CLOTHES,
        gender="Men;Unisex",
        material="Cotton;Organic Cotton;Polyester",
        feature="Quick-Dry;Breathable;Stretch",
        care_instructions="Machine Wash Cold;Machine Wash Warm",
    ),
    _leaf(
        "Clothing",
        "Men",
        "Jeans",
        ["Slim Fit Jeans", "Straight Leg Jeans", "Relaxed Jeans"],
        "jeans",
        50,
        "color size material gender feature? care_instructions country_of_origin",
        ["T-Shirts", "Boots"],
        color="Dark Wash;Light Wash;Black;Grey",
        size=_CLOTHES,
        material="Denim;Stretch Denim",
        gender="Men;Women",
        feature="Stretch",
        care_instructions="Machine Wash Cold",
    ),
    _leaf(
        "Clothing",
        "Shoes",
        "Running Shoes",
        ["Running Shoes", "Trail Running Shoes", "Road Running Shoes"],
        "shoes",
        85,
        "color size gender material? feature? country_of_origin",
        ["Water Bottles", "T-Shirts"],
        size=_SHOES,
        material="Mesh;Nylon",
        feature="Breathable;Lightweight;Slip-Resistant",
    ),
    _leaf(
        "Clothing",
        "Shoes",
        "Sandals",
        ["Sandals", "Slide Sandals", "Flip Flops"],
        "sandals",
        30,
        "color size gender material country_of_origin",
        ["Dresses"],
        size=_SHOES,
        material="Leather;Faux Leather;Rubber",
    ),
    _leaf(
        "Clothing",
        "Shoes",
        "Boots",
        ["Ankle Boots", "Hiking Boots", "Chelsea Boots"],
        "boots",
        110,
        "color size gender material feature? country_of_origin",
        ["Jeans"],
        size=_SHOES,
        color="Black;Beige;Burgundy;Olive Green;Charcoal",
        material="Leather;Suede;Faux Leather",
        feature="Waterproof;Slip-Resistant",
    ),
    # -------------------------------------------------------- Sports & Outdoors
    _leaf(
        "Sports & Outdoors",
        "Fitness",
        "Yoga Mats",
        ["Yoga Mat", "Exercise Mat", "Travel Yoga Mat"],
        "mat",
        28,
        "color material thickness feature? country_of_origin",
        ["Water Bottles"],
        material="TPE;Rubber;PVC;Cotton",
        feature="Non-Slip;Lightweight;Foldable",
    ),
    _leaf(
        "Sports & Outdoors",
        "Fitness",
        "Dumbbells",
        ["Dumbbell", "Dumbbell Set", "Hex Dumbbell"],
        "dumbbell",
        40,
        "weight material pack_size? color? country_of_origin",
        ["Yoga Mats"],
        material="Cast Iron;Neoprene;Rubber",
        color="Black;Grey;Red;Sky Blue;Blush Pink",
    ),
    _leaf(
        "Sports & Outdoors",
        "Fitness",
        "Water Bottles",
        ["Water Bottle", "Sports Bottle", "Tumbler"],
        "bottle",
        22,
        "capacity material color feature? country_of_origin",
        ["Yoga Mats", "Backpacks"],
        capacity="18 oz;24 oz;32 oz;40 oz",
        material="Stainless Steel;Tritan;Glass",
        feature="Insulated;BPA-Free;Leak-Proof",
    ),
    _leaf(
        "Sports & Outdoors",
        "Camping",
        "Tents",
        ["Camping Tent", "Dome Tent", "Backpacking Tent"],
        "tent",
        150,
        "capacity color material? feature? warranty? country_of_origin",
        ["Sleeping Bags", "Backpacks"],
        capacity="1-Person;2-Person;4-Person;6-Person",
        color="Olive Green;Grey;Navy Blue;Mustard Yellow;Teal",
        material="Polyester;Nylon",
        feature="Waterproof;Lightweight",
    ),
    _leaf(
        "Sports & Outdoors",
        "Camping",
        "Sleeping Bags",
        ["Sleeping Bag", "Mummy Sleeping Bag", "Camping Sleeping Bag"],
        "sleeping bag",
        60,
        "temperature_rating color material feature? country_of_origin",
        ["Tents", "Backpacks"],
        color="Olive Green;Navy Blue;Red;Grey",
        material="Down;Polyester",
        feature="Lightweight;Water-Resistant",
    ),
    _leaf(
        "Sports & Outdoors",
        "Camping",
        "Backpacks",
        ["Hiking Backpack", "Daypack", "Travel Backpack"],
        "backpack",
        70,
        "capacity color material feature? warranty? country_of_origin",
        ["Water Bottles", "Tents"],
        capacity="20L;30L;45L",
        color="Black;Olive Green;Navy Blue;Grey;Red;Mustard Yellow",
        material="Nylon;Polyester",
        feature="Water-Resistant;Lightweight",
    ),
)
DOMAINS: tuple[str, ...] = tuple(dict.fromkeys(leaf.domain for leaf in LEAVES))

#: fraction of a leaf's items that carry an optional (``?``) attribute
OPTIONAL_SHARE = 0.5

# ------------------------------------------------------------------------- brands
BRAND_STEMS = (
    "Lumina Nordvik Veloce Kairo Solace Brightwell Oakridge Mistral Zephyr Ember Aurelia Bloomfield Cobalt "
    "Driftwood Everly Fjord Granite Halcyon Juniper Kestrel Larkspur Meridian Nimbus Orchid Pinecrest Quill "
    "Redwood Sable Tidewater Umber Vesper Willow Yarrow Zenith Arlo Birchwood Cascade Dune Foxglove Glacier "
    "Harbor Indigo Jasper Koa Lotus Maple Nova Onyx Pebble Quartz Ridgeline Sierra Terra Velvet Wren Alder "
    "Bramble Crestview Delta Echo Flint Grove Haven Iris Kindred Lumen Marlow Northstar Olympia Prism Radiant "
    "Saffron Tundra Vantage Wildflower Axiom Beacon Cedar Dovetail Evergreen Firefly Goldleaf Hollis Ironwood"
).split()
BRAND_DOMAIN_WORDS = {
    "Beauty": ("Botanics", "Naturals", "Beauty", "Labs", "Cosmetics", "Skin", "Apothecary"),
    "Electronics": ("Audio", "Tech", "Electronics", "Digital", "Systems", "Devices"),
    "Home & Kitchen": ("Home", "Living", "Kitchen", "Goods", "Homeware", "Linens"),
    "Clothing": ("Apparel", "Wear", "Clothing", "Outfitters", "Threads", "Studio"),
    "Sports & Outdoors": ("Outdoors", "Sports", "Athletics", "Gear", "Fitness", "Trail"),
}
BRAND_PARTNERS = (
    "Harper Vale Smith Sons Hart Moss Reed Gray Lane Wolfe Stone Pierce Bell Fox Hale Rowe Cole Marsh Booth Nash"
).split()
#: legal suffix -> its other spellings
LEGAL_SUFFIXES = {
    "Inc.": ("Inc", ", Inc.", "Incorporated"),
    "Co.": ("Co", "Company", "& Co."),
    "LLC": ("L.L.C.", ", LLC"),
    "Ltd.": ("Ltd", "Limited"),
}
#: word -> abbreviations seen in listings
WORD_ABBREVIATIONS = {
    "Electronics": ("Elec.", "Electr."),
    "Technologies": ("Tech",),
    "Laboratories": ("Labs",),
    "Botanics": ("Bot.",),
    "Naturals": ("Nat.",),
    "Cosmetics": ("Cosm.",),
    "Outfitters": ("Outfit.",),
    "Athletics": ("Ath.",),
    "Apothecary": ("Apoth.",),
    "Homeware": ("Home",),
    "Digital": ("Dig.",),
    "Systems": ("Sys.",),
    "Devices": ("Dev.",),
    "Company": ("Co.",),
}

# ------------------------------------------------------------------- descriptions
DOMAIN_FILLERS = {
    "Beauty": (
        "Gentle enough for everyday use.",
        "A customer favourite for years.",
        "Our bestselling formula, now improved.",
    ),
    "Electronics": (
        "Easy setup in minutes.",
        "Includes a quick start guide.",
        "Designed for work, travel and play.",
    ),
    "Home & Kitchen": (
        "Makes a thoughtful housewarming gift.",
        "Designed to last for years.",
        "Easy to clean and store.",
    ),
    "Clothing": (
        "Pairs well with your favourite pieces.",
        "A wardrobe essential.",
        "Relaxed, comfortable fit.",
    ),
    "Sports & Outdoors": (
        "Built for the trail and the gym.",
        "Tested by athletes.",
        "Ready for your next adventure.",
    ),
}
GENERIC_FILLERS = (
    "Satisfaction guaranteed.",
    "Ships in recyclable packaging.",
    "Thousands of happy customers.",
)
BRAND_INTROS = ("From {b}: ", "By {b}. ", "{b}. ", "")
TITLE_SEPARATORS = (", ", " - ", " | ")

# ------------------------------------------------------------------------ reviews
#: index 0 negative (1-2 stars), 1 neutral (3), 2 positive (4-5); ``{n}`` is the product noun
REVIEW_OPENERS = (
    (
        "Disappointed with this {n}.",
        "Would not buy again.",
        "Stopped working after a week.",
        "Not worth the money.",
        "Cheaply made {n}.",
    ),
    ("It's okay.", "Decent {n} for the price.", "Does the job.", "Not bad, not great."),
    (
        "Love this {n}!",
        "Great {n}, exactly as described.",
        "Really happy with this purchase.",
        "Best {n} I have owned.",
        "Works perfectly.",
        "Highly recommend this {n}.",
    ),
)
REVIEW_DETAILS = (
    (
        "The packaging was damaged.",
        "Customer service never replied.",
        "Feels flimsy.",
        "Quality is poor.",
    ),
    ("Shipping took a while.", "A bit overpriced.", "Quality is average."),
    ("Arrived quickly and well packaged.", "Great value for the money.", "Quality feels premium."),
)
REVIEW_CLOSERS = (
    ("Returned it.", "Save your money.", "Would not recommend."),
    ("Might try another brand next time.", "It's fine for now."),
    ("Would buy again.", "Definitely recommend.", "My new favourite."),
)
REVIEW_SUMMARIES = {
    1: ("Terrible", "Waste of money", "One Star", "Do not buy"),
    2: ("Disappointing", "Not great", "Two Stars"),
    3: ("OK", "Three Stars", "Average", "It's fine"),
    4: ("Very good", "Happy with it", "Four Stars", "Good value"),
    5: ("Five Stars", "Love it", "Excellent", "Perfect"),
}
GENERIC_REVIEW_MENTIONS = (
    ("The {v} was a letdown.",),
    ("The {v} is as described.",),
    ("The {v} is great.",),
)
REVIEW_EMOJI = (("😡", "👎", "😞"), ("😐", "🤷"), ("😍", "👍", "🙂", "❤️"))
#: correct word -> misspelling planted in noisy reviews
REVIEW_TYPOS = {
    "really": "realy",
    "recommend": "recomend",
    "quality": "qualty",
    "money": "mony",
    "perfectly": "perfectley",
    "packaged": "packeged",
    "would": "woud",
    "Definitely": "Definately",
    "disappointed": "dissapointed",
    "Disappointed": "Dissapointed",
    "great": "grate",
    "favourite": "favorite",
}
