//! A synthetic regional population of Brittany, with duplicates injected at known rates, so that
//! matching quality can be measured against a known truth (which person each record belongs to).
//!
//! Names are drawn from vocabularies with a long-tailed (Zipf–Mandelbrot) law: 40,000 surnames
//! (real frequent Breton and French ones first, then a fixed procedural tail built from Breton
//! and French morphemes: `Le`, `Ker`, `Pen`, `-ec`, `-ou`, `-ennec`, `-ard`, `-eau`…) and a few
//! hundred first names per sex (real ones, simple and compound). Frequent names are frequent
//! and rare names rare, which is what makes homonyms and large blocks in a real region.
//! Birthplaces are INSEE (COG) codes: the main Breton maternity towns, any commune of the four
//! Breton departments, large towns elsewhere and a few countries (`99xxx`). Every generated INS
//! has a correct key and an order number unique in its month and place. The same seed always
//! gives the same population; the vocabularies are the same for every seed.

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::OnceLock;
use time::{Date, Month};

use crate::ins::{OID_NIR, with_key};
use crate::{
    Attributes, Demographics, IdentityStatus, Ins, Sex, SourceId, SourceRecord, StrictTraits,
};

/// Real surnames frequent in Brittany, roughly most frequent first. With [`FRENCH_SURNAMES`]
/// (interleaved) they take the first ranks of the surname vocabulary.
const BRETON_SURNAMES: &[&str] = &[
    "Le Goff",
    "Le Gall",
    "Le Roux",
    "Tanguy",
    "Hervé",
    "Le Bihan",
    "Guillou",
    "Morvan",
    "Le Floch",
    "Jégou",
    "Le Borgne",
    "Cariou",
    "Le Corre",
    "Le Guen",
    "Le Hénaff",
    "Quéméner",
    "Le Meur",
    "Riou",
    "Le Bras",
    "Guéguen",
    "Le Gac",
    "Le Berre",
    "Prigent",
    "Le Bris",
    "Salaün",
    "Kerhervé",
    "Pennec",
    "Caradec",
    "Jaouen",
    "Le Moal",
    "Le Page",
    "Gicquel",
    "Le Cam",
    "Le Du",
    "Berthou",
    "Le Lay",
    "Abgrall",
    "Kervella",
    "Le Dantec",
    "Guivarc'h",
    "Lagadec",
    "Madec",
    "Le Pape",
    "Le Saux",
    "Le Coz",
    "Ollivier",
    "Le Bourhis",
    "Corre",
    "Le Nours",
    "Mahé",
    "Le Quéré",
    "Gourvès",
    "Le Fur",
    "Bourhis",
    "Scouarnec",
    "Le Moigne",
    "Postic",
    "L'Hostis",
    "Queffélec",
    "Le Bot",
    "Thépaut",
    "Le Men",
    "Le Roy",
    "Le Mao",
    "Stéphan",
    "Marzin",
    "Le Hir",
    "Cloarec",
    "Le Rest",
    "Omnès",
    "Trividic",
    "Le Guern",
    "Le Goïc",
    "Le Drézen",
    "Kerdraon",
    "Kermarrec",
    "Kerjean",
    "Le Goaziou",
    "Le Bescond",
    "Calvez",
    "Le Calvez",
    "Guézennec",
    "Le Bars",
    "Le Garrec",
    "Le Lann",
    "Le Mével",
    "Le Bouëdec",
    "Le Coq",
    "Le Clech",
    "Le Cléac'h",
    "Le Ny",
    "Le Squer",
    "Le Toux",
    "Le Hellec",
    "Nédélec",
    "Cadiou",
    "Derrien",
    "Hamon",
    "Even",
    "Rivoal",
    "Le Roch",
    "Uguen",
    "Le Duff",
    "Le Guyader",
    "Jézéquel",
    "Le Jeune",
    "Le Gal",
    "Le Goffic",
    "Le Flem",
    "Le Louarn",
    "Le Sann",
    "Le Gléau",
    "Le Dréau",
    "Kerboriou",
    "Kerouédan",
    "Bihannic",
    "Lebreton",
    "Guillemot",
    "Josse",
    "Raoul",
    "Coquet",
    "Briand",
    "Jaffrès",
    "de Kerguelen",
    "de la Villemarqué",
    "Le Guillou",
    "Le Corvec",
    "Le Dû",
    "Le Nir",
];

/// Real surnames among the most frequent in France.
const FRENCH_SURNAMES: &[&str] = &[
    "Martin",
    "Thomas",
    "Bernard",
    "Petit",
    "Robert",
    "Richard",
    "Durand",
    "Dubois",
    "Moreau",
    "Laurent",
    "Simon",
    "Michel",
    "Lefebvre",
    "Leroy",
    "Roux",
    "David",
    "Bertrand",
    "Morel",
    "Fournier",
    "Girard",
    "Bonnet",
    "Dupont",
    "Lambert",
    "Fontaine",
    "Rousseau",
    "Vincent",
    "Muller",
    "Lefèvre",
    "Faure",
    "André",
    "Mercier",
    "Blanc",
    "Guérin",
    "Boyer",
    "Garnier",
    "Chevalier",
    "François",
    "Legrand",
    "Gauthier",
    "Garcia",
    "Perrin",
    "Robin",
    "Clément",
    "Morin",
    "Nicolas",
    "Henry",
    "Roussel",
    "Mathieu",
    "Gautier",
    "Masson",
    "Marchand",
    "Duval",
    "Denis",
    "Dumont",
    "Marie",
    "Lemaire",
    "Noël",
    "Meyer",
    "Dufour",
    "Meunier",
    "Brun",
    "Blanchard",
    "Giraud",
    "Joly",
    "Rivière",
    "Lucas",
    "Brunet",
    "Gaillard",
    "Barbier",
    "Arnaud",
    "Martinez",
    "Gérard",
    "Roche",
    "Renard",
    "Schmitt",
    "Roy",
    "Leroux",
    "Colin",
    "Vidal",
    "Caron",
    "Picard",
    "Roger",
    "Fabre",
    "Aubert",
    "Lemoine",
    "Renaud",
    "Dumas",
    "Lacroix",
    "Olivier",
    "Philippe",
    "Bourgeois",
    "Pierre",
    "Benoît",
    "Rey",
    "Leclerc",
    "Rolland",
    "Guillaume",
    "Lecomte",
    "Lopez",
    "Jean",
    "Dupuy",
    "Guillot",
    "Hubert",
    "Berger",
    "Carpentier",
    "Sanchez",
    "Dupuis",
    "Moulin",
    "Louis",
    "Deschamps",
    "Huet",
    "Vasseur",
    "Perez",
    "Boucher",
    "Fleury",
    "Royer",
    "Klein",
    "Jacquet",
    "Adam",
    "Paris",
    "Poirier",
    "Aubry",
    "Guyot",
    "Carré",
    "Charles",
    "Renault",
    "Charpentier",
    "Ménard",
    "Maillard",
    "Baron",
    "Bertin",
    "Bailly",
    "Schneider",
    "Fernandez",
    "Collet",
    "Léger",
    "Bouvier",
    "Julien",
    "Prévost",
    "Millet",
    "Perrot",
    "Daniel",
    "Cousin",
    "Germain",
    "Breton",
    "Besson",
    "Langlois",
    "Rémy",
    "Pelletier",
    "Lévêque",
    "Perrier",
    "Leblanc",
    "Barré",
    "Lebrun",
    "Marchal",
    "Weber",
    "Mallet",
    "Boulanger",
    "Jacob",
    "Monnier",
    "Michaud",
    "Rodriguez",
    "Guichard",
    "Gillet",
    "Étienne",
    "Poulain",
    "Tessier",
    "Chauvin",
    "Da Silva",
    "Bouchet",
    "Lemaître",
    "Maréchal",
    "Humbert",
    "Antoine",
    "Perret",
    "Cordier",
    "Pichon",
    "Lejeune",
    "Gilbert",
    "Lamy",
    "Delaunay",
    "Pasquier",
    "Laporte",
    "Nguyen",
    "Fernandes",
    "N'Diaye",
    "Benali",
    "Dos Santos",
    "Ferreira",
    "Haddad",
    "Diallo",
    "Traoré",
];

/// Morphemes of the procedural tail of Breton-looking surnames: an optional prefix (`Le`,
/// place-name prefixes `Ker`, `Pen`, `Plou`…), a stem (onset, vowel, coda) and a suffix.
const BRETON_PREFIXES: &[&str] = &[
    "", "", "", "Le ", "Le ", "Ker", "Pen", "Lan", "Tré", "Plou", "Guer", "Coat", "Loc", "Lez",
    "Ros",
];
const BRETON_ONSETS: &[&str] = &[
    "b", "c", "d", "g", "gu", "k", "l", "m", "n", "p", "qu", "r", "s", "t", "v", "z", "br", "gl",
    "gw", "tr", "h", "j",
];
const BRETON_VOWELS: &[&str] = &["a", "e", "i", "o", "ou", "é", "u", "eu"];
const BRETON_CODAS: &[&str] = &["", "", "l", "n", "r", "c", "z", "v", "ff", "nn", "rc'h"];
const BRETON_SUFFIXES: &[&str] = &[
    "", "ec", "ou", "en", "an", "ic", "iou", "ès", "ennec", "ig", "er", "og", "al", "ed", "oc",
    "eur", "ven", "del",
];
/// Morphemes of the procedural tail of French-looking surnames.
const FRENCH_PREFIXES: &[&str] = &["", "", "", "", "Le", "Du", "De", "Des"];
const FRENCH_ONSETS: &[&str] = &[
    "b", "ch", "d", "f", "g", "l", "m", "p", "r", "s", "t", "v", "br", "gr", "pr", "bl", "cl",
    "fl", "j", "n",
];
const FRENCH_VOWELS: &[&str] = &["a", "e", "i", "o", "ou", "au", "ai", "eu", "u"];
const FRENCH_CODAS: &[&str] = &[
    "", "", "r", "l", "n", "s", "ss", "rr", "ll", "nd", "rt", "c",
];
const FRENCH_SUFFIXES: &[&str] = &[
    "ard", "and", "aud", "eau", "et", "ot", "in", "on", "ier", "ault", "el", "y", "oux", "at",
    "ois", "ert", "eux", "ant", "elle", "ette", "ais", "ié", "ière", "ineau",
];

/// Number of distinct surnames of the vocabulary (real head + procedural tail).
pub const SURNAME_COUNT: usize = 40_000;

/// Real French and Breton female first names (simple ones), roughly most frequent first.
const FEMALE: &[&str] = &[
    "Marie",
    "Anne",
    "Nathalie",
    "Isabelle",
    "Sylvie",
    "Catherine",
    "Françoise",
    "Christine",
    "Monique",
    "Valérie",
    "Sandrine",
    "Stéphanie",
    "Céline",
    "Julie",
    "Camille",
    "Léa",
    "Manon",
    "Emma",
    "Chloé",
    "Louise",
    "Jacqueline",
    "Nicole",
    "Martine",
    "Brigitte",
    "Annick",
    "Nolwenn",
    "Jeanne",
    "Yvonne",
    "Michèle",
    "Chantal",
    "Patricia",
    "Véronique",
    "Corinne",
    "Sophie",
    "Laurence",
    "Florence",
    "Pascale",
    "Virginie",
    "Karine",
    "Caroline",
    "Delphine",
    "Aurélie",
    "Émilie",
    "Élodie",
    "Morgane",
    "Gwenaëlle",
    "Maïwenn",
    "Anaïs",
    "Hélène",
    "Audrey",
    "Mélanie",
    "Laetitia",
    "Pauline",
    "Marine",
    "Charlotte",
    "Claire",
    "Sarah",
    "Jade",
    "Alice",
    "Inès",
    "Zoé",
    "Lucie",
    "Mathilde",
    "Clémence",
    "Margaux",
    "Agathe",
    "Laure",
    "Juliette",
    "Léna",
    "Romane",
    "Soizic",
    "Rozenn",
    "Gaëlle",
    "Solenn",
    "Armelle",
    "Katell",
    "Enora",
    "Danielle",
    "Dominique",
    "Emmanuelle",
    "Vanessa",
    "Jennifer",
    "Amandine",
    "Élise",
    "Lisa",
    "Clara",
    "Océane",
    "Mélissa",
    "Laura",
    "Justine",
    "Marion",
    "Lola",
    "Lina",
    "Ambre",
    "Rose",
    "Anna",
    "Mila",
    "Julia",
    "Nina",
    "Margot",
    "Lou",
    "Iris",
    "Eva",
    "Valentine",
    "Gabrielle",
    "Elsa",
    "Maëlys",
    "Noémie",
    "Ophélie",
    "Coralie",
    "Estelle",
    "Gwenola",
    "Tifenn",
    "Maëlle",
    "Klervi",
    "Yvette",
    "Simone",
    "Germaine",
    "Marguerite",
    "Madeleine",
    "Suzanne",
    "Denise",
    "Paulette",
    "Odette",
    "Colette",
    "Josiane",
    "Ginette",
    "Jeannine",
    "Huguette",
    "Lucienne",
    "Andrée",
    "Renée",
    "Raymonde",
    "Marcelle",
    "Thérèse",
    "Bernadette",
    "Geneviève",
    "Odile",
    "Élisabeth",
    "Évelyne",
    "Béatrice",
    "Agnès",
    "Claudine",
    "Joëlle",
    "Muriel",
    "Sabine",
    "Fabienne",
    "Régine",
    "Josette",
    "Lydie",
    "Myriam",
    "Sonia",
    "Séverine",
    "Cécile",
    "Aline",
    "Angélique",
    "Adèle",
    "Léonie",
    "Capucine",
    "Héloïse",
    "Salomé",
    "Zélie",
    "Apolline",
    "Constance",
    "Bérénice",
    "Axelle",
    "Lilou",
    "Yasmine",
    "Nadia",
    "Fatima",
    "Amina",
    "Leïla",
    "Sofia",
    "Mireille",
    "Solange",
    "Viviane",
    "Marina",
    "Gisèle",
    "Lucette",
    "Hortense",
    "Blanche",
    "Alix",
    "Victoire",
    "Louane",
    "Nolwen",
    "Gwendoline",
    "Tiphaine",
    "Soazig",
    "Anne-Marie",
];
/// Second parts of compound female first names (`Marie-Claire`, `Anne-Sophie`).
const FEMALE_COMPOUNDS: &[(&str, &[&str])] = &[
    (
        "Marie",
        &[
            "Claire",
            "Thérèse",
            "Christine",
            "Laure",
            "Hélène",
            "Pierre",
            "France",
            "Françoise",
            "Josée",
            "Paule",
            "Noëlle",
            "Line",
            "Odile",
            "Annick",
            "Louise",
            "Madeleine",
            "Jeanne",
            "Agnès",
            "Cécile",
            "Jo",
            "Catherine",
            "Pascale",
        ],
    ),
    (
        "Anne",
        &[
            "Sophie",
            "Laure",
            "Claire",
            "Lise",
            "Cécile",
            "Charlotte",
            "Gaëlle",
        ],
    ),
];

const MALE: &[&str] = &[
    "Jean",
    "Pierre",
    "Michel",
    "Philippe",
    "Alain",
    "Patrick",
    "Nicolas",
    "Christophe",
    "Daniel",
    "Bernard",
    "Éric",
    "Laurent",
    "Frédéric",
    "Stéphane",
    "David",
    "Julien",
    "Thomas",
    "Jacques",
    "Claude",
    "Gérard",
    "Yves",
    "Hervé",
    "Yannick",
    "Lucas",
    "Hugo",
    "Louis",
    "Gabriel",
    "Arthur",
    "Jules",
    "Nathan",
    "Léo",
    "Yann",
    "Erwan",
    "Gwénolé",
    "Loïc",
    "Ronan",
    "Goulven",
    "Tanguy",
    "Corentin",
    "Maël",
    "Killian",
    "Mathieu",
    "Guénolé",
    "Kévin",
    "Anthony",
    "Sébastien",
    "François",
    "Joël",
    "René",
    "André",
    "Marcel",
    "Paul",
    "Antoine",
    "Baptiste",
    "Timothée",
    "Riwal",
    "Robert",
    "Roger",
    "Henri",
    "Georges",
    "Raymond",
    "Lucien",
    "Roland",
    "Guy",
    "Maurice",
    "Gilbert",
    "Serge",
    "Didier",
    "Thierry",
    "Pascal",
    "Dominique",
    "Olivier",
    "Vincent",
    "Bruno",
    "Franck",
    "Jérôme",
    "Fabrice",
    "Cédric",
    "Guillaume",
    "Damien",
    "Romain",
    "Benjamin",
    "Maxime",
    "Alexandre",
    "Jérémy",
    "Mickaël",
    "Florian",
    "Adrien",
    "Quentin",
    "Clément",
    "Alexis",
    "Valentin",
    "Théo",
    "Raphaël",
    "Adam",
    "Noah",
    "Ethan",
    "Tom",
    "Sacha",
    "Mathis",
    "Enzo",
    "Gabin",
    "Samuel",
    "Victor",
    "Martin",
    "Aurélien",
    "Ludovic",
    "Grégory",
    "Arnaud",
    "Emmanuel",
    "Jonathan",
    "Matthias",
    "Simon",
    "Tristan",
    "Gaël",
    "Brieuc",
    "Malo",
    "Tugdual",
    "Gurvan",
    "Alan",
    "Yvon",
    "Youenn",
    "Glenn",
    "Armel",
    "Marc",
    "Luc",
    "Joseph",
    "Francis",
    "Albert",
    "Émile",
    "Fernand",
    "Eugène",
    "Auguste",
    "Félix",
    "Léon",
    "Charles",
    "Étienne",
    "Denis",
    "Gilles",
    "Xavier",
    "Hugues",
    "Régis",
    "Patrice",
    "Nolan",
    "Evan",
    "Ewen",
    "Titouan",
    "Axel",
    "Loris",
    "Bastien",
    "Jordan",
    "Dylan",
    "Steven",
    "Joris",
    "Mohamed",
    "Karim",
    "Hamid",
    "Ali",
    "Youssef",
    "Rayan",
    "Ibrahim",
    "Moussa",
    "Gaston",
    "Marius",
    "Jules",
    "Lilian",
    "Morgan",
    "Mathéo",
    "Noé",
    "Côme",
    "Augustin",
    "Benoît",
    "Cyril",
    "Fabien",
    "Jean-Pierre",
    "Gwendal",
    "Elouan",
    "Aymeric",
    "Thibault",
    "Yohann",
    "Rémi",
    "Sylvain",
    "Hubert",
    "Bertrand",
    "Lionel",
    "Jimmy",
    "Mikaël",
    "Tudal",
    "Alban",
    "Gildas",
    "Ronan",
    "Kenan",
    "Lénaïc",
    "Sylvestre",
];
const MALE_COMPOUNDS: &[(&str, &[&str])] = &[
    (
        "Jean",
        &[
            "Claude",
            "Yves",
            "Luc",
            "Marc",
            "François",
            "Michel",
            "Paul",
            "Louis",
            "Jacques",
            "Baptiste",
            "Philippe",
            "Charles",
            "Noël",
            "René",
            "Guy",
            "Christophe",
            "Marie",
        ],
    ),
    ("Pierre", &["Yves", "Alexandre", "Louis", "Jean", "Marie"]),
];

/// INSEE codes of the communes of Brittany where most births are registered (maternity
/// hospitals of Rennes, Brest, Quimper, Lorient, Vannes, Saint-Brieuc…), most frequent first.
const BIRTHPLACE_HEAD: &[&str] = &[
    "35238", "29019", "29232", "56121", "56260", "22278", "35288", "29151", "22113", "56178",
    "29103", "35115", "22093", "35360", "29039", "22050", "56007", "29233", "22070", "35236",
    "56165", "29046", "35051", "35047", "29189", "22162", "22136", "29024", "56083", "56098",
];
/// Breton departments and the highest commune number of each in the COG (numbers in between
/// are communes, a few of which have since merged).
const BRETON_DEPARTMENTS: &[(&str, u16)] = &[("22", 389), ("29", 302), ("35", 363), ("56", 262)];
/// Large communes outside Brittany.
const ELSEWHERE_IN_FRANCE: &[&str] = &[
    "75056", "44109", "69123", "13055", "31555", "33063", "59350", "67482", "06088", "34172",
    "49007", "53130", "72181", "76540", "14118", "37261", "45234", "86194", "17300", "92050",
];
/// Countries (99 + INSEE country code): Morocco, Spain, Germany, United Kingdom, Italy,
/// Portugal, Algeria, Tunisia, Senegal, Vietnam.
const COUNTRIES: &[&str] = &[
    "99350", "99134", "99109", "99132", "99127", "99139", "99352", "99351", "99341", "99243",
];

/// A list of names sampled with a Zipf–Mandelbrot law: the name of rank `r` (from 1) has weight
/// `(r + offset)^-exponent`. Sampling is by binary search on the cumulative weights.
pub struct Vocabulary {
    pub names: Vec<String>,
    cumulative: Vec<f64>,
}

impl Vocabulary {
    fn new(names: Vec<String>, offset: f64, exponent: f64) -> Self {
        let mut total = 0.0;
        let cumulative = (0..names.len())
            .map(|r| {
                total += ((r + 1) as f64 + offset).powf(-exponent);
                total
            })
            .collect();
        Vocabulary { names, cumulative }
    }

    /// The probability of the name of rank `r` (from 0).
    pub fn probability(&self, r: usize) -> f64 {
        let total = self.cumulative[self.cumulative.len() - 1];
        let previous = if r == 0 { 0.0 } else { self.cumulative[r - 1] };
        (self.cumulative[r] - previous) / total
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> &str {
        let x = rng.random::<f64>() * self.cumulative[self.cumulative.len() - 1];
        let i = self.cumulative.partition_point(|&c| c < x);
        &self.names[i.min(self.names.len() - 1)]
    }
}

/// Keeps the first of names that normalise to the same letters (`Le Dû` / `Le Du`).
fn distinct(names: impl IntoIterator<Item = String>, limit: usize) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for name in names {
        if out.len() == limit {
            break;
        }
        if seen.insert(crate::matching::normalize::surname_joined(&name)) {
            out.push(name);
        }
    }
    out
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// One procedural surname: 60 % Breton-looking, 40 % French-looking.
fn procedural_surname(rng: &mut ChaCha8Rng) -> String {
    let pick = |rng: &mut ChaCha8Rng, list: &[&'static str]| *list.choose(rng).expect("non-empty");
    if rng.random_bool(0.6) {
        let prefix = pick(rng, BRETON_PREFIXES);
        let body = format!(
            "{}{}{}{}",
            pick(rng, BRETON_ONSETS),
            pick(rng, BRETON_VOWELS),
            pick(rng, BRETON_CODAS),
            pick(rng, BRETON_SUFFIXES)
        );
        match prefix {
            "" => capitalised(&body),
            "Le " => format!("Le {}", capitalised(&body)),
            _ => format!("{prefix}{body}"),
        }
    } else {
        let prefix = pick(rng, FRENCH_PREFIXES);
        let body = format!(
            "{}{}{}{}",
            pick(rng, FRENCH_ONSETS),
            pick(rng, FRENCH_VOWELS),
            pick(rng, FRENCH_CODAS),
            pick(rng, FRENCH_SUFFIXES)
        );
        if prefix.is_empty() {
            capitalised(&body)
        } else {
            format!("{prefix}{body}")
        }
    }
}

/// The surname vocabulary: the real names first (Breton and French interleaved), then a
/// procedural tail, [`SURNAME_COUNT`] distinct names in all, the same for every seed. Weights:
/// Zipf–Mandelbrot with offset 10 and exponent 0.8, so that the most frequent name is borne by
/// ≈ 0.5 % of persons, the first 100 by ≈ 15 % and the first 1,000 by ≈ 35 %, and the rarest by
/// a few persons per million (see `docs/benchmarks.md`).
pub fn surnames() -> &'static Vocabulary {
    static V: OnceLock<Vocabulary> = OnceLock::new();
    V.get_or_init(|| {
        let mut rng = ChaCha8Rng::seed_from_u64(0x5355_524e);
        let (b, f) = (BRETON_SURNAMES, FRENCH_SURNAMES);
        let head = (0..b.len().max(f.len()))
            .flat_map(|i| [b.get(i), f.get(i)])
            .flatten()
            .map(|s| s.to_string());
        let tail = std::iter::repeat_with(move || procedural_surname(&mut rng));
        Vocabulary::new(distinct(head.chain(tail), SURNAME_COUNT), 10.0, 0.8)
    })
}

fn first_name_vocabulary(simple: &[&str], compounds: &[(&str, &[&str])]) -> Vocabulary {
    // Compounds take the ranks after the 40 most frequent simple names, interleaved.
    let (top, rest) = simple.split_at(40.min(simple.len()));
    let compound = compounds
        .iter()
        .flat_map(|(first, seconds)| seconds.iter().map(move |s| format!("{first}-{s}")));
    let mut rest_iter = rest.iter().map(|s| s.to_string());
    let mut mixed = Vec::new();
    for c in compound {
        mixed.extend(rest_iter.next());
        mixed.push(c);
    }
    mixed.extend(rest_iter);
    let names = top.iter().map(|s| s.to_string()).chain(mixed);
    Vocabulary::new(distinct(names, usize::MAX), 3.0, 1.0)
}

/// First-name vocabularies per sex: a few hundred names each, Zipf–Mandelbrot with offset 3 and
/// exponent 1 (the most frequent name ≈ 5 % of persons, the first 10 ≈ 28 %).
pub fn first_name_vocabulary_of(sex: Sex) -> &'static Vocabulary {
    static F: OnceLock<Vocabulary> = OnceLock::new();
    static M: OnceLock<Vocabulary> = OnceLock::new();
    if sex == Sex::Female {
        F.get_or_init(|| first_name_vocabulary(FEMALE, FEMALE_COMPOUNDS))
    } else {
        M.get_or_init(|| first_name_vocabulary(MALE, MALE_COMPOUNDS))
    }
}

fn birthplaces_head() -> &'static Vocabulary {
    static V: OnceLock<Vocabulary> = OnceLock::new();
    V.get_or_init(|| {
        Vocabulary::new(
            BIRTHPLACE_HEAD.iter().map(|s| s.to_string()).collect(),
            1.0,
            1.0,
        )
    })
}

/// A birthplace: 55 % one of the main Breton maternity towns (Zipf), 35 % any commune of the
/// four Breton departments (uniform over the COG numbers), 7 % a large town elsewhere in France,
/// 3 % abroad.
fn birthplace(rng: &mut ChaCha8Rng) -> String {
    let x: f64 = rng.random();
    if x < 0.55 {
        birthplaces_head().sample(rng).to_string()
    } else if x < 0.90 {
        let (dept, max) = BRETON_DEPARTMENTS.choose(rng).expect("non-empty");
        format!("{dept}{:03}", rng.random_range(1..=*max))
    } else if x < 0.97 {
        ELSEWHERE_IN_FRANCE
            .choose(rng)
            .expect("non-empty")
            .to_string()
    } else {
        COUNTRIES.choose(rng).expect("non-empty").to_string()
    }
}

/// Hospitals feeding the regional index: assigning authorities (FINESS-based OIDs, illustrative).
pub const AUTHORITIES: &[&str] = &[
    "1.2.250.1.71.4.2.2.290000017",
    "1.2.250.1.71.4.2.2.350005179",
    "1.2.250.1.71.4.2.2.560023210",
    "1.2.250.1.71.4.2.2.560008799",
    "1.2.250.1.71.4.2.2.220000020",
    "1.2.250.1.71.4.2.2.290000785",
];

/// Rates at which duplicates and errors are injected; fixed before any tuning of the matcher.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rates {
    /// A person known to a second hospital.
    pub second_record: f64,
    /// A person known to a third hospital (among those with a second).
    pub third_record: f64,
    /// A person with a twin (same birth name, date, place; different first name and INS).
    pub twin: f64,
    /// Per duplicate record:
    pub name_typo: f64,
    pub first_name_typo: f64,
    pub date_transposition: f64,
    pub date_typo: f64,
    pub missing_ins: f64,
    /// A woman's used name typed as her birth name.
    pub used_name_as_birth_name: f64,
    /// A new used name (marriage) since the other source saw her.
    pub used_name_change: f64,
    pub only_first_first_name: f64,
    pub capitals_without_accents: f64,
    pub missing_birthplace: f64,
}

impl Default for Rates {
    fn default() -> Self {
        Rates {
            second_record: 0.30,
            third_record: 0.15,
            twin: 0.01,
            name_typo: 0.08,
            first_name_typo: 0.08,
            date_transposition: 0.03,
            date_typo: 0.03,
            missing_ins: 0.40,
            used_name_as_birth_name: 0.15,
            used_name_change: 0.10,
            only_first_first_name: 0.30,
            capitals_without_accents: 0.50,
            missing_birthplace: 0.20,
        }
    }
}

/// One generated record and the truth about it.
#[derive(Debug, Clone)]
pub struct SynthRecord {
    /// The person it belongs to (the truth).
    pub person: u32,
    /// The person's twin, if any.
    pub twin_of: Option<u32>,
    pub record: SourceRecord,
    /// Errors injected in this record (empty for a person's first record).
    pub errors: Vec<&'static str>,
}

struct Person {
    birth_name: String,
    used_name: Option<String>,
    first_names: Vec<String>,
    birth_date: Date,
    sex: Sex,
    birthplace: String,
    ins: Ins,
    twin_of: Option<u32>,
}

fn first_names(rng: &mut ChaCha8Rng, sex: Sex) -> Vec<String> {
    let list = first_name_vocabulary_of(sex);
    let n = rng.random_range(1..=3);
    let mut names: Vec<String> = Vec::new();
    while names.len() < n {
        let name = list.sample(rng).to_string();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

fn random_date(rng: &mut ChaCha8Rng) -> Date {
    let year = rng.random_range(1930..=2025);
    let month = Month::try_from(rng.random_range(1..=12u8)).expect("month in range");
    let day = rng.random_range(1..=month.length(year));
    Date::from_calendar_date(year, month, day).expect("valid date")
}

/// An INS for a person: sex, year and month of birth, birthplace, then an order number unique
/// among the persons of the same sex born the same month in the same place (as the NIR's is).
fn make_ins(orders: &mut HashMap<String, u32>, sex: Sex, date: Date, birthplace: &str) -> Ins {
    let sex_digit = if sex == Sex::Female { 2 } else { 1 };
    let prefix = format!(
        "{sex_digit}{:02}{:02}{}",
        date.year() % 100,
        u8::from(date.month()),
        birthplace
    );
    let next = orders.entry(prefix.clone()).or_default();
    *next += 1;
    let order = (*next - 1) % 999 + 1;
    let number = format!("{prefix}{order:03}");
    Ins::parse(&with_key(&number).expect("generated NIR"), OID_NIR, false).expect("valid INS")
}

fn typo(rng: &mut ChaCha8Rng, s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    if chars.len() < 3 {
        return s.to_string();
    }
    let i = rng.random_range(1..chars.len() - 1);
    let letter = (b'a' + rng.random_range(0..26u8)) as char;
    match rng.random_range(0..4) {
        0 => chars[i] = letter,
        1 => {
            chars.remove(i);
        }
        2 => chars.insert(i, letter),
        _ => chars.swap(i, i + 1),
    }
    chars.into_iter().collect()
}

fn capitals_without_accents(s: &str) -> String {
    crate::matching::normalize::normalize_name(s)
}

fn date_typo(rng: &mut ChaCha8Rng, d: Date) -> Date {
    // Another digit typed for the units of the day or of the year.
    for _ in 0..10 {
        let candidate = if rng.random_bool(0.5) {
            let day = (d.day() / 10) * 10 + rng.random_range(0..10u8);
            Date::from_calendar_date(d.year(), d.month(), day).ok()
        } else {
            let year = (d.year() / 10) * 10 + rng.random_range(0..10);
            Date::from_calendar_date(year, d.month(), d.day()).ok()
        };
        if let Some(c) = candidate.filter(|c| *c != d && c.year() <= 2025) {
            return c;
        }
    }
    d
}

/// Generates `persons` persons and their records (first record of each person first, then
/// duplicates in a shuffled order of sources and times).
pub fn generate(persons: usize, seed: u64, rates: &Rates) -> Vec<SynthRecord> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut people: Vec<Person> = Vec::with_capacity(persons + persons / 50);
    let mut orders: HashMap<String, u32> = HashMap::new();
    while people.len() < persons {
        let sex = if rng.random_bool(0.5) {
            Sex::Female
        } else {
            Sex::Male
        };
        let birth_date = random_date(&mut rng);
        let birthplace = birthplace(&mut rng);
        let birth_name = surnames().sample(&mut rng).to_string();
        let used_name = (sex == Sex::Female && birth_date.year() < 2000 && rng.random_bool(0.5))
            .then(|| surnames().sample(&mut rng).to_string())
            .filter(|u| *u != birth_name);
        let ins = make_ins(&mut orders, sex, birth_date, &birthplace);
        let id = people.len() as u32;
        let names = first_names(&mut rng, sex);
        let twin = rng.random_bool(rates.twin);
        people.push(Person {
            birth_name: birth_name.clone(),
            used_name,
            first_names: names.clone(),
            birth_date,
            sex,
            birthplace: birthplace.clone(),
            ins,
            twin_of: None,
        });
        if twin && people.len() < persons {
            let twin_sex = if rng.random_bool(0.5) {
                Sex::Female
            } else {
                Sex::Male
            };
            // A first name that shares no word and no sound with the sibling's.
            let mut twin_names = first_names(&mut rng, twin_sex);
            while twin_names.iter().any(|n| {
                names.iter().any(|m| {
                    crate::matching::phonetic::phonetic(n) == crate::matching::phonetic::phonetic(m)
                        || n.split('-').any(|w| m.split('-').any(|v| v == w))
                })
            }) {
                twin_names = first_names(&mut rng, twin_sex);
            }
            let ins = make_ins(&mut orders, twin_sex, birth_date, &birthplace);
            people.push(Person {
                birth_name,
                used_name: None,
                first_names: twin_names,
                birth_date,
                sex: twin_sex,
                birthplace,
                ins,
                twin_of: Some(id),
            });
        }
    }

    let mut out = Vec::with_capacity(persons * 3 / 2);
    let mut local = 0u64;
    for (pid, p) in people.iter().enumerate() {
        let copies = if rng.random_bool(rates.second_record) {
            if rng.random_bool(rates.third_record) {
                3
            } else {
                2
            }
        } else {
            1
        };
        let mut authorities: Vec<&str> = AUTHORITIES.to_vec();
        for copy in 0..copies {
            let i = rng.random_range(0..authorities.len());
            let authority = authorities.swap_remove(i);
            local += 1;
            let mut errors = Vec::new();
            let mut birth_name = p.birth_name.clone();
            let mut used_name = p.used_name.clone();
            let mut names = p.first_names.clone();
            let mut date = p.birth_date;
            let mut birthplace = Some(p.birthplace.clone());
            let mut ins = Some(p.ins.clone());
            if copy > 0 {
                if rng.random_bool(rates.name_typo) {
                    birth_name = typo(&mut rng, &birth_name);
                    errors.push("name typo");
                }
                if rng.random_bool(rates.first_name_typo) {
                    names[0] = typo(&mut rng, &names[0]);
                    errors.push("first name typo");
                }
                if rng.random_bool(rates.date_transposition)
                    && date.day() <= 12
                    && date.day() != u8::from(date.month())
                {
                    let month = Month::try_from(date.day()).expect("day ≤ 12");
                    date = Date::from_calendar_date(date.year(), month, u8::from(date.month()))
                        .expect("swapped date");
                    errors.push("date transposition");
                } else if rng.random_bool(rates.date_typo) {
                    date = date_typo(&mut rng, date);
                    errors.push("date typo");
                }
                if rng.random_bool(rates.missing_ins) {
                    ins = None;
                    errors.push("missing INS");
                }
                if p.sex == Sex::Female && rng.random_bool(rates.used_name_as_birth_name) {
                    if let Some(u) = used_name.take() {
                        birth_name = u;
                        errors.push("used name as birth name");
                    }
                } else if p.sex == Sex::Female && rng.random_bool(rates.used_name_change) {
                    used_name = Some(surnames().sample(&mut rng).to_string());
                    errors.push("used name change");
                }
                if names.len() > 1 && rng.random_bool(rates.only_first_first_name) {
                    names.truncate(1);
                    errors.push("only first first name");
                }
                if rng.random_bool(rates.capitals_without_accents) {
                    birth_name = capitals_without_accents(&birth_name);
                    names = names.iter().map(|n| capitals_without_accents(n)).collect();
                    errors.push("capitals without accents");
                }
                if rng.random_bool(rates.missing_birthplace) {
                    birthplace = None;
                    errors.push("missing birthplace");
                }
            }
            let status = match (&ins, &birthplace) {
                (Some(_), Some(_)) if rng.random_bool(0.6) => IdentityStatus::Qual,
                (Some(_), _) => IdentityStatus::Recup,
                (None, Some(_)) if rng.random_bool(0.5) => IdentityStatus::Vali,
                _ => IdentityStatus::Prov,
            };
            out.push(SynthRecord {
                person: pid as u32,
                twin_of: p.twin_of,
                record: SourceRecord {
                    id: SourceId {
                        authority: authority.to_string(),
                        local_id: format!("IPP{local:08}"),
                    },
                    ins,
                    demographics: Demographics {
                        traits: StrictTraits {
                            birth_name,
                            birth_first_names: names,
                            birth_date: date,
                            sex: p.sex,
                            birthplace,
                        },
                        used_name,
                        used_first_name: None,
                        address: None,
                        telecom: None,
                    },
                    status,
                    attributes: Attributes::default(),
                    updated_us: local as i64,
                },
                errors,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_population_and_every_record_is_valid() {
        let a = generate(2_000, 7, &Rates::default());
        let b = generate(2_000, 7, &Rates::default());
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| x.record == y.record));
        let today = time::macros::date!(2026 - 11 - 25);
        for r in &a {
            r.record
                .validate(today)
                .unwrap_or_else(|e| panic!("{:?}: {e}", r.record));
        }
        let c = generate(2_000, 8, &Rates::default());
        assert_ne!(a[0].record, c[0].record);
    }

    #[test]
    fn duplicate_rates_are_near_the_configured_ones() {
        let rates = Rates::default();
        let records = generate(20_000, 1, &rates);
        let persons = records.iter().map(|r| r.person).max().unwrap() as f64 + 1.0;
        let dups = records.len() as f64 - persons;
        let expected = rates.second_record * (1.0 + rates.third_record);
        assert!(
            (dups / persons - expected).abs() < 0.02,
            "{}",
            dups / persons
        );
        let twins = records
            .iter()
            .filter(|r| r.twin_of.is_some())
            .map(|r| r.person);
        let twins: std::collections::BTreeSet<u32> = twins.collect();
        assert!((twins.len() as f64 / persons - rates.twin).abs() < 0.005);
        let missing = records
            .iter()
            .filter(|r| r.errors.contains(&"missing INS"))
            .count() as f64;
        assert!((missing / dups - rates.missing_ins).abs() < 0.03);
    }
}

#[cfg(test)]
mod vocabulary_tests {
    use super::*;

    fn share(v: &Vocabulary, n: usize) -> f64 {
        (0..n.min(v.names.len())).map(|r| v.probability(r)).sum()
    }

    #[test]
    fn vocabularies_are_large_and_long_tailed() {
        let s = surnames();
        assert_eq!(s.names.len(), SURNAME_COUNT);
        let (top1, top100, top1000) = (share(s, 1), share(s, 100), share(s, 1000));
        let homonymy: f64 = (0..s.names.len()).map(|r| s.probability(r).powi(2)).sum();
        eprintln!(
            "surnames: top 1 {top1:.4}, top 100 {top100:.3}, top 1000 {top1000:.3}, Σp² {homonymy:.2e}, rarest {:.2e}",
            s.probability(s.names.len() - 1)
        );
        assert!((0.003..0.01).contains(&top1) && (0.1..0.25).contains(&top100));
        for sex in [Sex::Female, Sex::Male] {
            let v = first_name_vocabulary_of(sex);
            let homonymy: f64 = (0..v.names.len()).map(|r| v.probability(r).powi(2)).sum();
            eprintln!(
                "{sex:?} first names: {} names, top 1 {:.3}, top 10 {:.3}, Σp² {homonymy:.2e}",
                v.names.len(),
                share(v, 1),
                share(v, 10)
            );
            assert!(v.names.len() >= 200);
        }
        eprintln!("surname sample: {:?}", &s.names[200..230]);
        eprintln!("surname sample: {:?}", &s.names[20_000..20_030]);
    }
}
