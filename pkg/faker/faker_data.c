/* Embedded English-locale data for the fake data generators: names, places, words, companies,
 * browsers. Kept as plain const arrays so generating never allocates or locks. */
#include "faker/faker_data.h"

#define LIST(name, ...)                                                                            \
    static const char *const name##_items[] = {__VA_ARGS__};                                       \
    const mk_faker_pool_t name = {name##_items, sizeof name##_items / sizeof name##_items[0]}

LIST(mk_faker_first_names, "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael",
     "Linda", "William", "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica",
     "Thomas", "Sarah", "Charles", "Karen", "Christopher", "Lisa", "Daniel", "Nancy", "Matthew",
     "Betty", "Anthony", "Margaret", "Mark", "Sandra", "Donald", "Ashley", "Steven", "Kimberly",
     "Paul", "Emily", "Andrew", "Donna", "Joshua", "Michelle", "Kenneth", "Carol", "Kevin",
     "Amanda", "Brian", "Dorothy", "George", "Melissa", "Timothy", "Deborah", "Ronald", "Stephanie",
     "Edward", "Rebecca", "Jason", "Sharon", "Jeffrey", "Laura", "Ryan", "Cynthia", "Olivia",
     "Liam", "Emma", "Noah", "Sophia", "Ethan", "Ava", "Lucas", "Mia", "Henry");

LIST(mk_faker_last_names, "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller",
     "Davis", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson",
     "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White",
     "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen",
     "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson",
     "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips",
     "Evans", "Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart",
     "Morris", "Murphy", "Cook", "Rogers");

LIST(mk_faker_cities, "New York", "Los Angeles", "Chicago", "Houston", "Phoenix", "Philadelphia",
     "San Antonio", "San Diego", "Dallas", "San Jose", "Austin", "Jacksonville", "Fort Worth",
     "Columbus", "Charlotte", "Indianapolis", "San Francisco", "Seattle", "Denver", "Washington",
     "Boston", "El Paso", "Nashville", "Detroit", "Oklahoma City", "Portland", "Las Vegas",
     "Memphis", "Louisville", "Baltimore", "Milwaukee", "Albuquerque", "Tucson", "Fresno",
     "Sacramento", "Kansas City", "Mesa", "Atlanta", "Omaha", "Colorado Springs", "Raleigh",
     "Miami", "Minneapolis", "Tulsa", "Cleveland", "Wichita", "Arlington", "New Orleans", "Tampa",
     "Honolulu", "Springfield", "Madison");

LIST(mk_faker_words, "time", "year", "people", "way", "day", "thing", "world", "life", "hand",
     "part", "child", "eye", "place", "work", "week", "case", "point", "number", "group", "problem",
     "fact", "home", "water", "room", "area", "money", "story", "month", "book", "job", "word",
     "business", "issue", "side", "kind", "head", "house", "service", "friend", "power", "hour",
     "game", "line", "end", "member", "city", "community", "name", "team", "minute", "idea", "body",
     "information", "level", "office", "door", "health", "art", "history", "party", "result",
     "change", "morning", "reason", "research", "moment", "air", "teacher", "force", "education",
     "garden", "river", "market", "window", "letter", "music", "island", "forest", "bridge",
     "signal", "quick", "bright", "silent", "ancient", "happy", "green", "simple", "modern",
     "gentle", "brave", "quiet", "early", "golden", "narrow", "steady", "build", "create",
     "explore", "follow", "gather", "improve", "deliver", "measure", "travel", "discover", "open",
     "carry", "listen", "remember", "around", "beyond", "through", "under", "always", "often",
     "never", "rapidly", "together", "almost", "again", "below", "within");

LIST(mk_faker_job_titles, "Software Engineer", "Senior Software Engineer", "Staff Engineer",
     "Data Scientist", "Data Analyst", "Product Manager", "Senior Product Manager",
     "Project Manager", "Engineering Manager", "UX Designer", "Graphic Designer",
     "Marketing Manager", "Marketing Coordinator", "Sales Representative", "Account Executive",
     "Account Manager", "Customer Success Manager", "Customer Support Specialist",
     "Operations Manager", "Financial Analyst", "Accountant", "Controller",
     "Chief Executive Officer", "Chief Technology Officer", "Chief Financial Officer",
     "Human Resources Manager", "Recruiter", "Office Manager", "Administrative Assistant",
     "Business Analyst", "Systems Administrator", "Network Engineer", "Security Analyst",
     "DevOps Engineer", "Site Reliability Engineer", "Database Administrator", "QA Engineer",
     "Technical Writer", "Solutions Architect", "Cloud Architect", "Mobile Developer",
     "Frontend Developer", "Backend Developer", "Research Scientist", "Legal Counsel", "Paralegal",
     "Logistics Coordinator", "Supply Chain Manager", "Registered Nurse", "Pharmacist", "Teacher",
     "Civil Engineer", "Mechanical Engineer", "Electrician", "Consultant");

LIST(mk_faker_company_suffixes, "Inc", "LLC", "Ltd", "Group", "and Sons", "Corp", "Holdings",
     "Partners", "Co", "Industries", "Solutions", "Technologies", "Labs", "Systems", "Enterprises");

LIST(mk_faker_company_adjectives, "Blue", "Bright", "Global", "Summit", "Pioneer", "Northern",
     "Silver", "Red", "Golden", "Apex", "Evergreen", "Quantum", "Prime", "United", "Pacific",
     "Atlas", "Vertex", "Nova", "Harbor", "Iron", "Crystal", "Maple", "Horizon", "Stellar",
     "Cedar");

LIST(mk_faker_company_nouns, "Dynamics", "Solutions", "Systems", "Networks", "Logistics",
     "Analytics", "Ventures", "Labs", "Works", "Foods", "Media", "Energy", "Health", "Capital",
     "Robotics", "Studios", "Bank", "Motors", "Software", "Partners", "Pharma", "Consulting",
     "Retail", "Security", "Telecom");

LIST(mk_faker_user_agents,
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36",
     "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36",
     "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/123.0.0.0 Safari/537.36",
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
     "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0",
     "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4_1) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4.1 Safari/605.1.15",
     "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
     "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/16.6 Mobile/15E148 Safari/604.1",
     "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Mobile Safari/537.36",
     "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/122.0.0.0 Mobile Safari/537.36",
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
     "curl/8.5.0", "PostmanRuntime/7.37.3");

LIST(mk_faker_street_names, "Main", "Oak", "Pine", "Maple", "Cedar", "Elm", "Washington", "Lake",
     "Hill", "Park", "Walnut", "Sunset", "Lincoln", "Jackson", "Church", "River", "Highland",
     "Mill", "Spring", "Meadow", "Forest", "Ridge", "Franklin", "Jefferson", "Madison", "Adams",
     "Chestnut", "Willow", "Birch", "Center", "North", "South", "Valley", "Broad", "Market",
     "Union", "Water", "Bridge", "Prospect", "Cherry", "Dogwood", "Hickory");

LIST(mk_faker_street_suffixes, "Street", "Avenue", "Road", "Lane", "Drive", "Boulevard", "Court",
     "Way", "Place", "Terrace", "Circle");

LIST(mk_faker_email_domains, "gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com",
     "proton.me", "mail.com", "example.com", "example.org", "example.net");

LIST(mk_faker_tlds, "com", "net", "org", "io", "info", "biz", "co", "dev", "app");

LIST(mk_faker_genders, "male", "female");

const mk_faker_pair_t mk_faker_countries[] = {
    {"United States", "US"},
    {"Canada", "CA"},
    {"Mexico", "MX"},
    {"Brazil", "BR"},
    {"Argentina", "AR"},
    {"Chile", "CL"},
    {"Colombia", "CO"},
    {"Peru", "PE"},
    {"United Kingdom", "GB"},
    {"Ireland", "IE"},
    {"France", "FR"},
    {"Germany", "DE"},
    {"Spain", "ES"},
    {"Portugal", "PT"},
    {"Italy", "IT"},
    {"Netherlands", "NL"},
    {"Belgium", "BE"},
    {"Switzerland", "CH"},
    {"Austria", "AT"},
    {"Sweden", "SE"},
    {"Norway", "NO"},
    {"Denmark", "DK"},
    {"Finland", "FI"},
    {"Poland", "PL"},
    {"Czechia", "CZ"},
    {"Hungary", "HU"},
    {"Greece", "GR"},
    {"Turkey", "TR"},
    {"Israel", "IL"},
    {"Egypt", "EG"},
    {"South Africa", "ZA"},
    {"Nigeria", "NG"},
    {"Kenya", "KE"},
    {"Morocco", "MA"},
    {"India", "IN"},
    {"China", "CN"},
    {"Japan", "JP"},
    {"South Korea", "KR"},
    {"Singapore", "SG"},
    {"Thailand", "TH"},
    {"Vietnam", "VN"},
    {"Indonesia", "ID"},
    {"Philippines", "PH"},
    {"Australia", "AU"},
    {"New Zealand", "NZ"},
    {"Saudi Arabia", "SA"},
    {"United Arab Emirates", "AE"},
};
const size_t mk_faker_countries_n = sizeof mk_faker_countries / sizeof mk_faker_countries[0];

const mk_faker_pair_t mk_faker_states[] = {
    {"Alabama", "AL"},        {"Alaska", "AK"},        {"Arizona", "AZ"},
    {"Arkansas", "AR"},       {"California", "CA"},    {"Colorado", "CO"},
    {"Connecticut", "CT"},    {"Delaware", "DE"},      {"Florida", "FL"},
    {"Georgia", "GA"},        {"Hawaii", "HI"},        {"Idaho", "ID"},
    {"Illinois", "IL"},       {"Indiana", "IN"},       {"Iowa", "IA"},
    {"Kansas", "KS"},         {"Kentucky", "KY"},      {"Louisiana", "LA"},
    {"Maine", "ME"},          {"Maryland", "MD"},      {"Massachusetts", "MA"},
    {"Michigan", "MI"},       {"Minnesota", "MN"},     {"Mississippi", "MS"},
    {"Missouri", "MO"},       {"Montana", "MT"},       {"Nebraska", "NE"},
    {"Nevada", "NV"},         {"New Hampshire", "NH"}, {"New Jersey", "NJ"},
    {"New Mexico", "NM"},     {"New York", "NY"},      {"North Carolina", "NC"},
    {"North Dakota", "ND"},   {"Ohio", "OH"},          {"Oklahoma", "OK"},
    {"Oregon", "OR"},         {"Pennsylvania", "PA"},  {"Rhode Island", "RI"},
    {"South Carolina", "SC"}, {"South Dakota", "SD"},  {"Tennessee", "TN"},
    {"Texas", "TX"},          {"Utah", "UT"},          {"Vermont", "VT"},
    {"Virginia", "VA"},       {"Washington", "WA"},    {"West Virginia", "WV"},
    {"Wisconsin", "WI"},      {"Wyoming", "WY"},       {"District of Columbia", "DC"},
};
const size_t mk_faker_states_n = sizeof mk_faker_states / sizeof mk_faker_states[0];
