//! The demo's cast: two companies, a few dozen people with their managers,
//! employee numbers and start dates, and their day, written as the SQL
//! Plumm's app runs.

pub(super) const CONTOSO: i64 = 1;
pub(super) const FABRIKAM: i64 = 2;
pub(super) const CONTOSO_TENANT: &str = "8f3c1e2a-5b7d-4c9e-a1f0-2d4b6c8e0a11";
pub(super) const FABRIKAM_TENANT: &str = "b2d4f6a8-1c3e-4a5b-9d7f-0e2c4a6b8d22";

/// Plumm before the daemon was installed. Plumm's table carries more than
/// the contract's columns (the daemon discovers them), and managers are
/// named by Plumm id, so each is looked up by email once everyone exists.
pub(super) const SEED: &str = "
ALTER TABLE users ADD COLUMN manager_id INTEGER;
ALTER TABLE users ADD COLUMN employee_number TEXT;
ALTER TABLE users ADD COLUMN start_date TEXT;

INSERT INTO users (company_id, email, first_name, last_name, role, department, location, country, status, employee_number, start_date) VALUES
 (1, 'patti.fernandez@contoso.com',   'Patti',     'Fernandez', 'President',         'Executive',   'London',     'GB', 'active',   'C-1001', '2012-01-09'),
 (1, 'megan.bowen@contoso.com',       'Megan',     'Bowen',     'Marketing Manager', 'Marketing',   'London',     'GB', 'active',   'C-1002', '2016-05-03'),
 (1, 'alex.wilber@contoso.com',       'Alex',      'Wilber',    'Engineer',          'Engineering', 'London',     'GB', 'active',   'C-1003', '2021-09-06'),
 (1, 'adele.vance@contoso.com',       'Adele',     'Vance',     'Retail Manager',    'Retail',      'Manchester', 'GB', 'active',   'C-1004', '2017-02-13'),
 (1, 'lee.gu@contoso.com',            'Lee',       'Gu',        'Director',          'Operations',  'London',     'GB', 'active',   'C-1005', '2014-10-01'),
 (1, 'nestor.wilke@contoso.com',      'Nestor',    'Wilke',     'Operations Lead',   'Operations',  'Leeds',      'GB', 'active',   'C-1006', '2018-03-19'),
 (1, 'lynne.robbins@contoso.com',     'Lynne',     'Robbins',   'Planner',           'Retail',      'Bristol',    'GB', 'active',   'C-1007', '2020-07-01'),
 (1, 'diego.siciliani@contoso.com',   'Diego',     'Siciliani', 'HR Manager',        'People',      'London',     'GB', 'active',   'C-1008', '2015-11-16'),
 (1, 'isaiah.langer@contoso.com',     'Isaiah',    'Langer',    'Sales Rep',         'Sales',       'Dublin',     'IE', 'active',   'C-1009', '2022-01-10'),
 (1, 'johanna.lorenz@contoso.com',    'Johanna',   'Lorenz',    'Engineering Lead',  'Engineering', 'Berlin',     'DE', 'active',   'C-1010', '2016-08-22'),
 (1, 'joni.sherman@contoso.com',      'Joni',      'Sherman',   'Paralegal',         'Legal',       'London',     'GB', 'active',   'C-1011', '2023-04-03'),
 (1, 'grady.archie@contoso.com',      'Grady',     'Archie',    'Designer',          'Engineering', 'London',     'GB', 'active',   'C-1012', '2019-06-17'),
 (1, 'henrietta.mueller@contoso.com', 'Henrietta', 'Mueller',   'Developer',         'Engineering', 'Berlin',     'DE', 'active',   'C-1013', '2022-09-12'),
 (1, 'irvin.sayers@contoso.com',      'Irvin',     'Sayers',    'Director',          'Sales',       'London',     'GB', 'active',   'C-1014', '2013-03-04'),
 (1, 'pradeep.gupta@contoso.com',     'Pradeep',   'Gupta',     'Accountant',        'Finance',     'London',     'GB', 'active',   'C-1015', '2021-02-01'),
 (1, 'miriam.graham@contoso.com',     'Miriam',    'Graham',    'Director',          'Finance',     'London',     'GB', 'active',   'C-1016', '2014-05-12'),
 (1, 'christie.cline@contoso.com',    'Christie',  'Cline',     'Buyer',             'Retail',      'Bristol',    'GB', 'active',   'C-1017', '2020-10-05'),
 (1, 'enrico.cattaneo@contoso.com',   'Enrico',    'Cattaneo',  'Attorney',          'Legal',       'Milan',      'IT', 'active',   'C-1018', '2018-01-15'),
 (2, 'jonas.weber@fabrikam.com',      'Jonas',     'Weber',     'CFO',               'Finance',     'Zurich',     'CH', 'active',   'F-0001', '2015-01-05'),
 (2, 'emma.dubois@fabrikam.com',      'Emma',      'Dubois',    'Clinical Lead',     'Clinical',    'Lyon',       'FR', 'active',   'F-0002', '2017-09-04'),
 (2, 'ana.silva@fabrikam.com',        'Ana',       'Silva',     'Nurse',             'Clinical',    'Lisbon',     'PT', 'active',   'F-0003', '2019-02-18'),
 (2, 'tom.becker@fabrikam.com',       'Tom',       'Becker',    'Physiotherapist',   'Clinical',    'Munich',     'DE', 'active',   'F-0004', '2020-05-11'),
 (2, 'sofia.rossi@fabrikam.com',      'Sofia',     'Rossi',     'Coach',             'Wellbeing',   'Rome',       'IT', 'active',   'F-0005', '2021-03-01'),
 (2, 'liam.murphy@fabrikam.com',      'Liam',      'Murphy',    'Coach',             'Wellbeing',   'Cork',       'IE', 'active',   'F-0006', '2022-06-13'),
 (2, 'noah.jansen@fabrikam.com',      'Noah',      'Jansen',    'Data Analyst',      'Insights',    'Utrecht',    'NL', 'active',   'F-0007', '2021-11-08'),
 (2, 'mia.kowalski@fabrikam.com',     'Mia',       'Kowalski',  'Support Agent',     'Support',     'Krakow',     'PL', 'active',   'F-0008', '2023-01-16'),
 (2, 'lucas.moreau@fabrikam.com',     'Lucas',     'Moreau',    'Support Agent',     'Support',     'Paris',      'FR', 'active',   'F-0009', '2023-07-03'),
 (2, 'olivia.berg@fabrikam.com',      'Olivia',    'Berg',      'Product Manager',   'Product',     'Oslo',       'NO', 'active',   'F-0010', '2018-04-09'),
 (2, 'hugo.lindqvist@fabrikam.com',   'Hugo',      'Lindqvist', 'Engineer',          'Product',    'Stockholm',  'SE', 'inactive', 'F-0011', '2019-08-26'),
 (2, 'zoe.martin@fabrikam.com',       'Zoe',       'Martin',    'Nutritionist',      'Wellbeing',   'Nantes',     'FR', 'active',   'F-0012', '2020-01-13');

UPDATE users SET manager_id = (SELECT id FROM users m WHERE m.email = 'patti.fernandez@contoso.com')
 WHERE email IN ('megan.bowen@contoso.com', 'adele.vance@contoso.com', 'lee.gu@contoso.com',
                 'diego.siciliani@contoso.com', 'johanna.lorenz@contoso.com',
                 'irvin.sayers@contoso.com', 'miriam.graham@contoso.com', 'enrico.cattaneo@contoso.com');
UPDATE users SET manager_id = (SELECT id FROM users m WHERE m.email = 'johanna.lorenz@contoso.com')
 WHERE email IN ('alex.wilber@contoso.com', 'grady.archie@contoso.com', 'henrietta.mueller@contoso.com');
UPDATE users SET manager_id = (SELECT id FROM users m WHERE m.email = 'adele.vance@contoso.com')
 WHERE email IN ('lynne.robbins@contoso.com', 'christie.cline@contoso.com');
UPDATE users SET manager_id = (SELECT id FROM users m WHERE m.email = 'lee.gu@contoso.com')
 WHERE email = 'nestor.wilke@contoso.com';
UPDATE users SET manager_id = (SELECT id FROM users m WHERE m.email = 'irvin.sayers@contoso.com')
 WHERE email = 'isaiah.langer@contoso.com';
UPDATE users SET manager_id = (SELECT id FROM users m WHERE m.email = 'miriam.graham@contoso.com')
 WHERE email = 'pradeep.gupta@contoso.com';
UPDATE users SET manager_id = (SELECT id FROM users m WHERE m.email = 'enrico.cattaneo@contoso.com')
 WHERE email = 'joni.sherman@contoso.com';
UPDATE users SET manager_id = (SELECT id FROM users m WHERE m.email = 'jonas.weber@fabrikam.com')
 WHERE email IN ('emma.dubois@fabrikam.com', 'olivia.berg@fabrikam.com', 'sofia.rossi@fabrikam.com',
                 'mia.kowalski@fabrikam.com', 'lucas.moreau@fabrikam.com');
UPDATE users SET manager_id = (SELECT id FROM users m WHERE m.email = 'emma.dubois@fabrikam.com')
 WHERE email IN ('ana.silva@fabrikam.com', 'tom.becker@fabrikam.com');
UPDATE users SET manager_id = (SELECT id FROM users m WHERE m.email = 'sofia.rossi@fabrikam.com')
 WHERE email IN ('liam.murphy@fabrikam.com', 'zoe.martin@fabrikam.com');
UPDATE users SET manager_id = (SELECT id FROM users m WHERE m.email = 'olivia.berg@fabrikam.com')
 WHERE email IN ('noah.jansen@fabrikam.com', 'hugo.lindqvist@fabrikam.com');
";

/// One moment of the day: a headline and the SQL Plumm's app would run.
pub(super) struct Moment {
    pub time: &'static str,
    pub headline: &'static str,
    pub sql: &'static str,
}

/// Each moment is one Plumm transaction; a moment the daemon learns to do
/// later (a pre-hire created ahead of its start date) is one more entry.
pub(super) const DAY: &[Moment] = &[
    Moment {
        time: "09:00",
        headline: "Two hires at Contoso, one at Fabrikam, starting today",
        sql: "INSERT INTO users (company_id, email, first_name, last_name, role, department, location, country, employee_number, start_date, manager_id)
              VALUES (1, 'allan.deyoung@contoso.com', 'Allan', 'Deyoung', 'IT Admin', 'IT', 'London', 'GB', 'C-1019', date('now'),
                      (SELECT id FROM users WHERE email = 'lee.gu@contoso.com')),
                     (1, 'debra.berger@contoso.com', 'Debra', 'Berger', 'Administrative Assistant', 'Executive', 'London', 'GB', 'C-1020', date('now'),
                      (SELECT id FROM users WHERE email = 'patti.fernandez@contoso.com')),
                     (2, 'ines.costa@fabrikam.com', 'Ines', 'Costa', 'Nurse', 'Clinical', 'Porto', 'PT', 'F-0013', date('now'),
                      (SELECT id FROM users WHERE email = 'emma.dubois@fabrikam.com'));",
    },
    Moment {
        time: "09:30",
        headline: "Fabrikam opens a Research team: its lead and two researchers, hired together",
        sql: "INSERT INTO users (company_id, email, first_name, last_name, role, department, location, country, employee_number, start_date, manager_id)
              VALUES (2, 'maya.chen@fabrikam.com', 'Maya', 'Chen', 'Research Lead', 'Research', 'Zurich', 'CH', 'F-0014', date('now'),
                      (SELECT id FROM users WHERE email = 'jonas.weber@fabrikam.com'));
              INSERT INTO users (company_id, email, first_name, last_name, role, department, location, country, employee_number, start_date, manager_id)
              VALUES (2, 'omar.haddad@fabrikam.com', 'Omar', 'Haddad', 'Researcher', 'Research', 'Zurich', 'CH', 'F-0015', date('now'),
                      (SELECT id FROM users WHERE email = 'maya.chen@fabrikam.com')),
                     (2, 'lena.fischer@fabrikam.com', 'Lena', 'Fischer', 'Researcher', 'Research', 'Munich', 'DE', 'F-0016', date('now'),
                      (SELECT id FROM users WHERE email = 'maya.chen@fabrikam.com'));",
    },
    Moment {
        time: "10:00",
        headline: "Contoso signs a nurse who starts in 10 days: created now, disabled until then (prehire_lead = 14d)",
        sql: "INSERT INTO users (company_id, email, first_name, last_name, role, department, location, country, employee_number, start_date)
              VALUES (1, 'rosa.ortega@contoso.com', 'Rosa', 'Ortega', 'Nurse', 'Clinical', 'Leeds', 'GB', 'C-1022', date('now', '+10 days'));",
    },
    Moment {
        time: "10:30",
        headline: "Ana Silva is promoted to Clinical Lead (joins Managers)",
        sql: "UPDATE users SET role = 'Clinical Lead', updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')
              WHERE email = 'ana.silva@fabrikam.com';",
    },
    Moment {
        time: "11:15",
        headline: "Joni Sherman marries and becomes Joni Lopez (new email)",
        sql: "UPDATE users SET last_name = 'Lopez', email = 'joni.lopez@contoso.com'
              WHERE email = 'joni.sherman@contoso.com';",
    },
    Moment {
        time: "12:00",
        headline: "Alex Wilber moves from Engineering to Sales, reporting to Irvin Sayers",
        sql: "UPDATE users SET department = 'Sales', role = 'Account Executive',
                     manager_id = (SELECT id FROM users WHERE email = 'irvin.sayers@contoso.com')
              WHERE email = 'alex.wilber@contoso.com';",
    },
    Moment {
        time: "14:00",
        headline: "Grady Archie leaves Contoso (offboarding; on_suspend_groups = remove)",
        sql: "UPDATE users SET status = 'inactive' WHERE email = 'grady.archie@contoso.com';",
    },
    Moment {
        time: "15:20",
        headline: "Hugo Lindqvist is rehired at Fabrikam",
        sql: "UPDATE users SET status = 'active', role = 'Senior Engineer' WHERE email = 'hugo.lindqvist@fabrikam.com';",
    },
    Moment {
        time: "16:45",
        headline: "A contractor is entered with an address Entra cannot take, next to a valid hire",
        sql: "INSERT INTO users (company_id, email, first_name, last_name, role, department, location, country, employee_number, start_date)
              VALUES (1, 'sam+contractor@contoso.com', 'Sam', 'Taylor', 'Contractor', 'IT', 'London', 'UK', NULL, date('now')),
                     (1, 'nina.patel@contoso.com', 'Nina', 'Patel', 'Analyst', 'Finance', 'London', 'GB', 'C-1021', date('now'));",
    },
    Moment {
        time: "17:30",
        headline: "Liam Murphy's contract ends: his record is deleted in Plumm (on_delete = delete)",
        sql: "DELETE FROM users WHERE email = 'liam.murphy@fabrikam.com';",
    },
    Moment {
        time: "17:45",
        headline: "Liam Murphy signs again: Plumm enters him anew, Entra's recycle bin gives his account back",
        sql: "INSERT INTO users (company_id, email, first_name, last_name, role, department, location, country, employee_number, start_date, manager_id)
              VALUES (2, 'liam.murphy@fabrikam.com', 'Liam', 'Murphy', 'Senior Coach', 'Wellbeing', 'Cork', 'IE', 'F-0006', date('now'),
                      (SELECT id FROM users WHERE email = 'sofia.rossi@fabrikam.com'));",
    },
];
