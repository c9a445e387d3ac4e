"""Static reference data for the synthetic generator: force areas, offences, courts, prisons, names.

Everything here is public or invented-for-the-purpose and is documented in docs/synthetic-data.md.
Nothing is read from `linkage.tokens`: the generator must be an independent source of variation,
so the engine is not tested against its own tables.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ForceArea:
    code: str  # ONS police force area code (PFA, E23 England / W15 Wales)
    name: str
    short: str  # prefix used in crime reference numbers
    volume: int  # relative volume (approx. recorded crime, thousands, year ending March 2022)
    cps_area: str  # the CPS area that prosecutes the force's cases


# The 43 territorial police force areas of England and Wales with their ONS PFA codes. Relative
# volumes approximate each force's share of police recorded crime (ONS, year ending March 2022):
# the Metropolitan Police is ~15 %, City of London ~0.1 %. Only the shares matter.
FORCE_AREAS: tuple[ForceArea, ...] = (
    ForceArea("E23000001", "Metropolitan Police", "MPS", 840, "London"),
    ForceArea("E23000002", "Cumbria", "CUM", 30, "North West"),
    ForceArea("E23000003", "Lancashire", "LAN", 130, "North West"),
    ForceArea("E23000004", "Merseyside", "MER", 120, "Mersey-Cheshire"),
    ForceArea("E23000005", "Greater Manchester", "GMP", 330, "North West"),
    ForceArea("E23000006", "Cheshire", "CHE", 70, "Mersey-Cheshire"),
    ForceArea("E23000007", "Northumbria", "NOR", 140, "North East"),
    ForceArea("E23000008", "Durham", "DUR", 60, "North East"),
    ForceArea("E23000009", "North Yorkshire", "NYP", 45, "Yorkshire and Humberside"),
    ForceArea("E23000010", "West Yorkshire", "WYP", 320, "Yorkshire and Humberside"),
    ForceArea("E23000011", "South Yorkshire", "SYP", 150, "Yorkshire and Humberside"),
    ForceArea("E23000012", "Humberside", "HUM", 100, "Yorkshire and Humberside"),
    ForceArea("E23000013", "Cleveland", "CLE", 75, "North East"),
    ForceArea("E23000014", "West Midlands", "WMP", 330, "West Midlands"),
    ForceArea("E23000015", "Staffordshire", "STA", 85, "West Midlands"),
    ForceArea("E23000016", "West Mercia", "WMC", 95, "West Midlands"),
    ForceArea("E23000017", "Warwickshire", "WAR", 40, "West Midlands"),
    ForceArea("E23000018", "Derbyshire", "DER", 85, "East Midlands"),
    ForceArea("E23000019", "Nottinghamshire", "NOT", 100, "East Midlands"),
    ForceArea("E23000020", "Lincolnshire", "LIN", 50, "East Midlands"),
    ForceArea("E23000021", "Leicestershire", "LEI", 90, "East Midlands"),
    ForceArea("E23000022", "Northamptonshire", "NTH", 60, "East Midlands"),
    ForceArea("E23000023", "Cambridgeshire", "CAM", 70, "East of England"),
    ForceArea("E23000024", "Norfolk", "NFK", 65, "East of England"),
    ForceArea("E23000025", "Suffolk", "SUF", 55, "East of England"),
    ForceArea("E23000026", "Bedfordshire", "BED", 50, "Thames and Chiltern"),
    ForceArea("E23000027", "Hertfordshire", "HER", 85, "Thames and Chiltern"),
    ForceArea("E23000028", "Essex", "ESS", 150, "East of England"),
    ForceArea("E23000029", "Thames Valley", "TVP", 160, "Thames and Chiltern"),
    ForceArea("E23000030", "Hampshire", "HAM", 160, "Wessex"),
    ForceArea("E23000031", "Surrey", "SUR", 75, "South East"),
    ForceArea("E23000032", "Kent", "KEN", 180, "South East"),
    ForceArea("E23000033", "Sussex", "SUS", 120, "South East"),
    ForceArea("E23000034", "City of London", "COL", 6, "London"),
    ForceArea("E23000035", "Devon and Cornwall", "DEC", 125, "South West"),
    ForceArea("E23000036", "Avon and Somerset", "ASP", 140, "South West"),
    ForceArea("E23000037", "Gloucestershire", "GLO", 45, "South West"),
    ForceArea("E23000038", "Wiltshire", "WIL", 45, "Wessex"),
    ForceArea("E23000039", "Dorset", "DOR", 50, "Wessex"),
    ForceArea("W15000001", "North Wales", "NWP", 55, "Cymru Wales"),
    ForceArea("W15000002", "Gwent", "GWE", 55, "Cymru Wales"),
    ForceArea("W15000003", "South Wales", "SWP", 120, "Cymru Wales"),
    ForceArea("W15000004", "Dyfed-Powys", "DPP", 35, "Cymru Wales"),
)

# Prisons by CPS area (NOMIS establishment codes); the last entry of each list receives women.
PRISONS: dict[str, tuple[str, ...]] = {
    "London": ("PVI", "WWI", "BAI", "BZI"),
    "North West": ("MRI", "PRI", "STI"),
    "Mersey-Cheshire": ("LPI", "ALI", "STI"),
    "North East": ("DMI", "HLI", "LNI"),
    "Yorkshire and Humberside": ("LEI", "DNI", "HMI", "NHI"),
    "West Midlands": ("BMI", "HEI", "DWI"),
    "East Midlands": ("NMI", "LCI", "FHI"),
    "East of England": ("NWI", "CDI", "PBI"),
    "Thames and Chiltern": ("BFI", "RNI", "BZI"),
    "Wessex": ("WII", "DTI", "EWI"),
    "South East": ("EYI", "LWI", "DWI"),
    "South West": ("BLI", "EXI", "EWI"),
    "Cymru Wales": ("CFI", "SWI", "BWI", "EWI"),
}


@dataclass(frozen=True)
class Offence:
    code: str  # Home Office offence code, NNN/NN
    label: str
    weight_da: float  # relative frequency among DA-flagged crimes
    weight_other: float  # relative frequency among other crimes with a named suspect
    severity: int  # 0 summary-level, 1 either-way, 2 serious (more Crown Court and custody)


# Offence codes in the Home Office notifiable-offence format (class/subclass). The selection and
# the weights are indicative (DA crime is dominated by violence against the person, then stalking
# and harassment, then criminal damage); the labels follow the HO Counting Rules classes but the
# code-to-label mapping is not an authoritative copy of them.
OFFENCES: tuple[Offence, ...] = (
    Offence("105/01", "Common assault and battery", 0.33, 0.10, 0),
    Offence("008/01", "Assault occasioning actual bodily harm", 0.20, 0.08, 1),
    Offence("008/71", "Controlling or coercive behaviour", 0.09, 0.0, 1),
    Offence("195/94", "Harassment", 0.09, 0.03, 0),
    Offence("008/31", "Stalking", 0.05, 0.01, 1),
    Offence("058/01", "Criminal damage to a dwelling", 0.10, 0.08, 0),
    Offence("009/01", "Threats to kill", 0.04, 0.01, 2),
    Offence("005/01", "Wounding with intent to do grievous bodily harm", 0.02, 0.02, 2),
    Offence("019/07", "Rape of a female aged 16 or over", 0.02, 0.01, 2),
    Offence("125/10", "Public fear, alarm or distress", 0.06, 0.12, 0),
    Offence("046/00", "Shoplifting", 0.0, 0.22, 0),
    Offence("028/01", "Burglary in a dwelling", 0.0, 0.08, 1),
    Offence("092/01", "Possession of controlled drugs", 0.0, 0.14, 0),
    Offence("104/01", "Assault on a constable", 0.0, 0.05, 0),
    Offence("037/02", "Aggravated vehicle taking", 0.0, 0.05, 1),
)
BREACH_OFFENCE = Offence("195/12", "Breach of a restraining order", 0.0, 0.0, 0)

ETHNICITY_CODES: dict[str, tuple[str, ...]] = {
    "White": ("W1", "W2", "W3", "W4", "W9"),
    "Black": ("B1", "B2", "B3"),
    "Asian": ("A1", "A2", "A3", "A4", "A5"),
    "Mixed": ("M1", "M2", "M3", "M4"),
    "Other": ("O1", "O2", "O9"),
}

# Extra name pools, so that names reflect the population the justice system sees and the court's
# cp1252 file carries accented characters (every name here encodes in cp1252).
SOUTH_ASIAN_MALE = (
    "Mohammed",
    "Muhammad",
    "Ali",
    "Imran",
    "Amir",
    "Hassan",
    "Bilal",
    "Sajid",
    "Tariq",
    "Rajesh",
    "Sanjay",
    "Arjun",
    "Harpreet",
    "Gurpreet",
    "Zain",
    "Usman",
    "Kamran",
)
SOUTH_ASIAN_FEMALE = (
    "Fatima",
    "Aisha",
    "Ayesha",
    "Amina",
    "Zainab",
    "Priya",
    "Sunita",
    "Nadia",
    "Samina",
    "Shabana",
    "Gurpreet",
    "Harpreet",
    "Anjali",
)
SOUTH_ASIAN_SURNAMES = (
    "Khan",
    "Ahmed",
    "Hussain",
    "Ali",
    "Begum",
    "Patel",
    "Singh",
    "Kaur",
    "Shah",
    "Iqbal",
    "Rahman",
    "Mahmood",
    "Akhtar",
    "Sharma",
    "Chaudhry",
    "Malik",
)
BLACK_MALE = (
    "Kwame",
    "Kofi",
    "Emmanuel",
    "Chukwuemeka",
    "Tunde",
    "Jermaine",
    "Tyrone",
    "Dwayne",
    "Olumide",
    "Abdi",
    "Mohamed",
    "Delroy",
)
BLACK_FEMALE = (
    "Abena",
    "Adaeze",
    "Chioma",
    "Blessing",
    "Precious",
    "Shanice",
    "Tanisha",
    "Folake",
    "Fartun",
    "Marcia",
)
BLACK_SURNAMES = (
    "Okafor",
    "Adeyemi",
    "Mensah",
    "Owusu",
    "Campbell",
    "Brown",
    "Williams",
    "Clarke",
    "Mohamed",
    "Osei",
    "Boateng",
    "Johnson",
    "Francis",
)
EUROPEAN_MALE = (
    "Lukasz",
    "Piotr",
    "Krzysztof",
    "Tomasz",
    "Andrei",
    "Mihai",
    "Ionuţ",
    "José",
    "André",
    "Jürgen",
    "Sören",
    "Seán",
    "Ciarán",
    "Dónal",
    "Oisín",
)
EUROPEAN_FEMALE = (
    "Zoë",
    "Chloë",
    "Siobhán",
    "Aoife",
    "Niamh",
    "Renée",
    "Agnieszka",
    "Małgorzata",
    "Ioana",
    "Andreea",
    "María",
    "Inês",
    "Sinéad",
    "Aíne",
    "Noémie",
)
EUROPEAN_SURNAMES = (
    "Nowak",
    "Kowalski",
    "Popescu",
    "Ionescu",
    "Müller",
    "Núñez",
    "Gonçalves",
    "O'Brien",
    "O'Sullivan",
    "Ó Súilleabháin",
    "McCarthy",
    "Murphy",
    "Kelly",
    "D'Souza",
    "Lévesque",
    "Schäfer",
    "Jablonski",
)

# UK spelling variants that a different clerk might type for the same person. Independent of the
# engine's canonicalisation table on purpose.
SPELLING_VARIANTS: tuple[tuple[str, ...], ...] = (
    ("Mohammed", "Mohamed", "Muhammad", "Mohammad", "Muhammed"),
    ("Stephen", "Steven"),
    ("Catherine", "Katherine", "Kathryn", "Katharine"),
    ("Jon", "John"),
    ("Philip", "Phillip"),
    ("Geoffrey", "Jeffrey"),
    ("Sean", "Shaun", "Shawn", "Seán"),
    ("Rachel", "Rachael"),
    ("Zoe", "Zoë", "Zoey"),
    ("Ann", "Anne"),
    ("Sara", "Sarah"),
    ("Aisha", "Ayesha"),
    ("Lewis", "Louis"),
    ("Claire", "Clare"),
    ("Louise", "Louisa"),
    ("Nicola", "Nichola"),
    ("Alan", "Allan", "Allen"),
    ("Neil", "Neal"),
    ("Brian", "Bryan"),
    ("Mathew", "Matthew"),
    ("Jayden", "Jaden", "Jaiden"),
    ("Thompson", "Thomson"),
    ("Davies", "Davis"),
    ("Philips", "Phillips"),
    ("Macdonald", "McDonald"),
    ("Mackenzie", "McKenzie"),
    ("Smyth", "Smith"),
    ("Reid", "Reed", "Read"),
)

# Institutional addresses shared by many unrelated people (approved premises, hostels).
HOSTEL_STREETS = ("Probation Approved Premises", "Salvation Army Hostel", "YMCA", "Night Shelter")
